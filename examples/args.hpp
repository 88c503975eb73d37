// Command-line numbers for the examples: a bad one prints the usage line and exits with 2,
// instead of std::stoi's uncaught exception.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace examples {

inline unsigned long number_arg(const char* text, unsigned long max, const char* usage) {
    char* end = nullptr;
    errno = 0;
    unsigned long n = std::strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || *text == '-' || n > max) {
        std::fprintf(stderr, "bad number '%s'\nusage: %s\n", text, usage);
        std::exit(2);
    }
    return n;
}

}  // namespace examples
