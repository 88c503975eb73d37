#!/bin/sh
# Doxygen input filter (docs/Doxyfile): weft's headers are documented with plain `//`
# comments, which Doxygen ignores. This turns them into doc comments as Doxygen reads a
# header, leaving the headers alone:
#   - the comment block a header starts with documents the file (@file);
#   - a comment line before a declaration documents it (`// x` -> `/// x`);
#   - a comment after code on the same line documents that member (`; // x` -> `; ///< x`).
exec sed -E \
  -e '1s#^// #/// @file\n/// #' \
  -e '/^[[:space:]]*\/\//!s#^([^"]*[;{},)])([[:space:]]+)// #\1\2///< #' \
  -e 's#^([[:space:]]*)// #\1/// #' \
  -e 's#^([[:space:]]*)//$#\1///#' \
  "$1"
