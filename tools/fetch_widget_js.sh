#!/usr/bin/env bash
# Re-fetch, at pinned versions and from the npm registry, the JavaScript the built book loads
# from its own _static/ instead of a CDN, so that the book (and its browser check) works offline:
#
#   book/_static/jupyter-widgets/  @jupyter-widgets/html-manager: renders saved ipywidgets
#   book/_static/mathjax/          MathJax 3: renders the math
#
#     bash tools/fetch_widget_js.sh        # needs npm; rewrites both folders (committed)
#
# _config.yml points myst-nb (nb_ipywidgets_js) and Sphinx (mathjax_path) at them; the book
# build copies book/_static/ to _build/html/_static/. Kept, byte for byte as published:
#  - html-manager's non-AMD bundle dist/embed.js (renders the built-in ipywidgets controls and
#    needs no require.js) and the Font Awesome woff2 fonts it references (button icons);
#  - MathJax's es5/tex-chtml-full.js (every TeX extension built in, so nothing is autoloaded)
#    and the CHTML woff fonts.
# The SHA-256 of each folder's file list (SOURCE.txt) is pinned below, so a re-fetch either
# reproduces the committed files or fails. To change a version, change its pin, run the script,
# check the book (python -m diffgen_utils.browser_check _build/html), and pin the printed sum.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HTML_MANAGER=1.0.15   # ipywidgets 8.1 asks for ^1.0.1 (ipywidgets/_version.py)
FONTAWESOME=5.15.4    # the Font Awesome Free that html-manager 1.0.15 bundles (licence only)
MATHJAX=3.2.2         # Sphinx 7 loads mathjax@3 (tex-mml-chtml) from a CDN by default
WIDGETS_SUM=b6656df4d34c65ac6da948caf0a25d11e9910fb5c0b7491d362ff4e0a0db2934
MATHJAX_SUM=206a5f18096d1ac89dcc047671285599388c8aedf6f2db8441ee76b6db741dfd

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER" \
    "@fortawesome/fontawesome-free@$FONTAWESOME" "mathjax@$MATHJAX" >/dev/null)
for pkg in "jupyter-widgets-html-manager-$HTML_MANAGER" "fortawesome-fontawesome-free-$FONTAWESOME" \
           "mathjax-$MATHJAX"; do
    mkdir -p "$tmp/$pkg"
    tar xzf "$tmp/$pkg.tgz" -C "$tmp/$pkg"
done
hm="$tmp/jupyter-widgets-html-manager-$HTML_MANAGER/package"
fa="$tmp/fortawesome-fontawesome-free-$FONTAWESOME/package"
mj="$tmp/mathjax-$MATHJAX/package"

status=0
# finish DEST PINNED HEADER: list and check the fetched files, write SOURCE.txt, move into place
finish() {
    local dest=$1 pinned=$2 header=$3 listing sum
    listing=$(cd "$dest.new" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    sum=$(printf '%s\n' "$listing" | sha256sum | cut -d' ' -f1)
    if [ "$sum" != "$pinned" ]; then
        echo "FAILED: $dest: the fetched files hash to $sum, pinned $pinned" >&2
        echo "$listing" >&2
        rm -rf "$dest.new"
        status=1
        return 1
    fi
    printf '%s\n\nsha256 of each file (their list hashes to %s):\n%s\n' \
        "$header" "$sum" "$listing" > "$dest.new/SOURCE.txt"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
    echo "wrote $dest ($(du -sh "$dest" | cut -f1))"
}

# html-manager: the bundle and the woff2 fonts its CSS names (webpack-hashed names)
dest=book/_static/jupyter-widgets
rm -rf "$dest.new" && mkdir -p "$dest.new"
cp "$hm/dist/embed.js" "$dest.new/"
for font in $(grep -o '[0-9a-f]\{20\}\.woff2' "$hm/dist/embed.js" | sort -u); do
    cp "$hm/dist/$font" "$dest.new/"
done
licences="$tmp/licences-widgets"
mkdir -p "$licences"
cp "$hm/dist/embed.js.LICENSE.txt" "$licences/"
cp "$fa/LICENSE.txt" "$licences/fontawesome-LICENSE.txt"
if finish "$dest" "$WIDGETS_SUM" \
"Fetched by tools/fetch_widget_js.sh; do not edit. From the npm registry:
@jupyter-widgets/html-manager $HTML_MANAGER: dist/embed.js and the Font Awesome woff2 fonts it
references. Licences: html-manager is part of ipywidgets, BSD-3-Clause (LICENSE); third-party
code bundled in embed.js: embed.js.LICENSE.txt; fonts: Font Awesome Free $FONTAWESOME, SIL OFL
1.1 (fontawesome-LICENSE.txt)."; then
    cp "$licences"/* "$dest/"
    # The npm package carries no licence file; ipywidgets' own (same project, same licence):
    python -c 'import sys; from importlib.metadata import distribution as d
sys.stdout.write(next(f for f in d("ipywidgets").files if f.name == "LICENSE").read_text())' \
        > "$dest/LICENSE"
fi

# MathJax: the all-in-one TeX component and the CHTML fonts, in MathJax's own layout (it finds
# the fonts relative to the script)
dest=book/_static/mathjax
rm -rf "$dest.new" && mkdir -p "$dest.new/output/chtml/fonts"
cp "$mj/es5/tex-chtml-full.js" "$dest.new/"
cp -r "$mj/es5/output/chtml/fonts/woff-v2" "$dest.new/output/chtml/fonts/"
if finish "$dest" "$MATHJAX_SUM" \
"Fetched by tools/fetch_widget_js.sh; do not edit. From the npm registry: mathjax $MATHJAX,
es5/tex-chtml-full.js and es5/output/chtml/fonts/woff-v2/. Licence: Apache-2.0 (LICENSE)."; then
    cp "$mj/LICENSE" "$dest/"
fi
exit "$status"
