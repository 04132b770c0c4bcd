#!/bin/sh
# subset.sh — build the kiosk's embedded CJK fonts.
#
# Source: Noto Sans CJK SC (Regular and Bold) from Debian's fonts-noto-cjk
# package (/usr/share/fonts/opentype/noto/NotoSansCJK-{Regular,Bold}.ttc, face
# "Noto Sans CJK SC" of the collection), upstream
# https://github.com/googlefonts/noto-cjk. Licence: SIL Open Font License 1.1;
# the licence text is copied next to the output as OFL.txt. "Source" is a
# Reserved Font Name of the upstream fonts; the subsets keep the Noto name.
#
# Coverage: ASCII, Latin-1 punctuation, general and CJK punctuation, full-width
# forms, every character of GB2312 (generated from Python's gb2312 codec), the
# fixed list in extra-chars.txt, and every non-ASCII character found in the
# kiosk's Go sources (the message table, preset phrases) and in packaging/demo/.
#
# Output: kiosk/ui/fonts/NotoSansSC-{Regular,Bold}.otf, kiosk/ui/fonts/OFL.txt
# and protocol/glyphs/chars.txt: the characters both subset fonts can draw
# (those of the coverage above that the source fonts have). The hub refuses
# text for kiosk screens with a character outside that list (package
# protocol/glyphs), so commit it together with the fonts. Idempotent: the
# same inputs give byte-identical outputs. Needs Debian's python3-fonttools,
# run with /usr/bin/python3. Run from anywhere: packaging/fonts/subset.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src=${NOTO_DIR:-/usr/share/fonts/opentype/noto}
out="$root/kiosk/ui/fonts"
list="$root/protocol/glyphs/chars.txt"
mkdir -p "$out"

/usr/bin/python3 - "$root" "$src" "$out" "$here/extra-chars.txt" "$list" <<'PY'
import os, sys, re
from fontTools.ttLib import TTCollection
from fontTools import subset

root, src, out, extra, charlist = sys.argv[1:6]

chars = set(chr(c) for c in range(0x20, 0x7F))
for lo, hi in [(0xA0, 0xFF), (0x2010, 0x205E), (0x3000, 0x303F), (0xFF01, 0xFF65), (0x2190, 0x2193), (0x25A0, 0x25CF)]:
    chars.update(chr(c) for c in range(lo, hi + 1))
for b1 in range(0xA1, 0xF8):
    for b2 in range(0xA1, 0xFF):
        try:
            chars.update(bytes([b1, b2]).decode("gb2312"))
        except UnicodeDecodeError:
            pass

def add_text(text):
    chars.update(ch for ch in text if ord(ch) > 0x7F and not ch.isspace())

with open(extra, encoding="utf-8") as f:
    for line in f:
        if not line.startswith("#"):
            add_text(line)
for sub in ("kiosk", "packaging/demo"):
    top = os.path.join(root, sub)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in ("testdata", "fonts"))
        for name in sorted(filenames):
            if sub == "kiosk" and not name.endswith(".go"):
                continue
            if not re.search(r"\.(go|json|md|txt|yaml|yml|toml|csv)$", name):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8", errors="ignore") as f:
                add_text(f.read())

text = "".join(sorted(chars))

def sc_face(path):
    coll = TTCollection(path)
    for font in coll.fonts:
        if font["name"].getDebugName(1) == "Noto Sans CJK SC":
            return font
    sys.exit("subset.sh: no 'Noto Sans CJK SC' face in " + path)

copyright_line = ""
drawable = set(chars)
for weight in ("Regular", "Bold"):
    font = sc_face(os.path.join(src, "NotoSansCJK-%s.ttc" % weight))
    font.recalcTimestamp = False
    copyright_line = font["name"].getDebugName(0)
    opts = subset.Options()
    opts.hinting = False
    opts.name_IDs = ["*"]
    opts.name_languages = ["*"]
    opts.notdef_outline = True
    opts.layout_features = ["kern", "vert", "vrt2", "locl", "ccmp", "liga", "palt", "halt"]
    s = subset.Subsetter(opts)
    s.populate(text=text)
    s.subset(font)
    drawable &= set(chr(c) for c in font.getBestCmap())
    dst = os.path.join(out, "NotoSansSC-%s.otf" % weight)
    font.save(dst)
    print("%s: %d characters, %d bytes" % (dst, len(text), os.path.getsize(dst)))

# The list of what the kiosk can draw: the requested characters both fonts
# have a glyph for.
listed = "".join(sorted(drawable))
with open(charlist, "w", encoding="utf-8") as f:
    for i in range(0, len(listed), 64):
        f.write(listed[i:i + 64] + "\n")
print("%s: %d of %d requested characters drawable" % (charlist, len(listed), len(text)))

lic = open("/usr/share/doc/fonts-noto-cjk/copyright", encoding="utf-8").read()
m = re.search(r"^License: SIL-1\.1\n((?: .*\n)+)", lic, re.M)
if not m:
    sys.exit("subset.sh: no SIL-1.1 text in the Debian copyright file")
body = "\n".join("" if l.strip() == "." else l[1:] for l in m.group(1).splitlines())
with open(os.path.join(out, "OFL.txt"), "w", encoding="utf-8") as f:
    f.write(copyright_line + "\n\n")
    f.write("Subset of Noto Sans CJK SC (https://github.com/googlefonts/noto-cjk)\n")
    f.write("made by packaging/fonts/subset.sh from Debian's fonts-noto-cjk.\n\n")
    f.write(body + "\n")
PY
