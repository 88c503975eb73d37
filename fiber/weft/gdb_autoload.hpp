// Include this in one source file of a program to have gdb load weft's `weft` commands
// (share/weft/gdb/weft-gdb.py) by itself. It names the script in the program's
// .debug_gdb_scripts section; gdb then looks for it in the current directory and along its
// source path, and loads it if the auto-load safe-path allows:
//     (gdb) directory /usr/local/share/weft/gdb
//     (gdb) add-auto-load-safe-path /usr/local/share/weft/gdb
// (both in ~/.gdbinit, before the program is loaded). It is a header of its own because gdb
// warns about every named script it cannot find: a program that does not ask for it keeps
// gdb quiet. ELF only; Mach-O has no such section.
#pragma once

#if defined(__ELF__)
// "MS" + entity size 1: the linker merges the identical entries of several files into one.
__asm__(".pushsection \".debug_gdb_scripts\", \"MS\", @progbits, 1\n"
        ".byte 1\n"  // a Python script, by file name
        ".asciz \"weft-gdb.py\"\n"
        ".popsection\n");
#endif
