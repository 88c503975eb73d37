// Async files: the seed's example (read three files with gather, write the combined one),
// partial reads, modes, and errors that carry the path and errno.
#include <weft/weft.hpp>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace {
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/weft-files-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf " + path).c_str()); }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
};
}  // namespace

TEST(Files, SeedExampleCombineThreeFiles) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "a.txt", "alpha\n");
        weft::write_file(dir / "b.txt", "beta\n");
        weft::write_file(dir / "c.txt", "gamma\n");
        auto [a, b, c] = weft::gather([&] { return weft::read_file(dir / "a.txt"); },
                                      [&] { return weft::read_file(dir / "b.txt"); },
                                      [&] { return weft::read_file(dir / "c.txt"); });
        auto out = weft::open_file(dir / "combined.txt", "w");
        out.write_all(a + b + c);
        out.close();
        EXPECT_EQ(weft::read_file(dir / "combined.txt"), "alpha\nbeta\ngamma\n");
    });
}

TEST(Files, ReadInPiecesAndAppend) {
    TempDir dir;
    weft::run([&] {
        weft::write_file(dir / "f", "0123456789");
        auto f = weft::open_file(dir / "f", "r");
        EXPECT_EQ(f.read(4), "0123");
        EXPECT_EQ(f.read(4), "4567");
        EXPECT_EQ(f.read_all(), "89");
        EXPECT_EQ(f.read(4), "");  // EOF
        f.close();
        EXPECT_FALSE(f.is_open());
        EXPECT_THROW(f.read(1), weft::InvalidStateError);
        auto g = weft::open_file(dir / "f", "ab");
        EXPECT_EQ(g.write("AB"), 2u);
        g.close();
        EXPECT_EQ(weft::read_file(dir / "f"), "0123456789AB");
    });
}

TEST(Files, ErrorsCarryPathAndErrno) {
    weft::run([] {
        try {
            weft::read_file("/nonexistent/weft/file");
            FAIL();
        } catch (const weft::SystemError& e) {
            EXPECT_EQ(e.errno_value(), ENOENT);
            EXPECT_NE(std::string(e.what()).find("/nonexistent/weft/file"), std::string::npos);
        }
        EXPECT_THROW(weft::open_file("/tmp/x", "rw?"), weft::Error);
    });
}

TEST(Files, LargeFileRoundTrip) {
    TempDir dir;
    weft::run([&] {
        std::string big(5 * 1024 * 1024, 'x');
        for (size_t i = 0; i < big.size(); i += 4097) big[i] = char('a' + i % 26);
        weft::write_file(dir / "big", big);
        EXPECT_EQ(weft::read_file(dir / "big"), big);
    });
}
