"""`python -m diffgen_utils.run`, the documented command: runs diffgen_utils.book.run."""
import sys

if __name__ == "__main__":
    from diffgen_utils.book.run import main

    sys.exit(main())
