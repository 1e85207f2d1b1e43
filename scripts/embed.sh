#!/bin/sh
# embed.sh NAME < file > file.c: turns a text file into a C string constant.
set -eu
printf '/* Generated from a text file by scripts/embed.sh: do not edit. */\n'
printf 'const char %s[] =\n' "$1"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/'
printf '    ;\n'
