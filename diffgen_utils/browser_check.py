"""`python -m diffgen_utils.browser_check`, the documented command: runs
diffgen_utils.book.browser_check."""
import sys

if __name__ == "__main__":
    from diffgen_utils.book.browser_check import main

    sys.exit(main())
