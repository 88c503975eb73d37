// Test main shared by every suite: besides running the tests, it fails any test that
// leaves a file descriptor open (the open fds are counted before and after each test).
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace {

std::set<int> open_fds() {
    std::set<int> fds;
    rlimit rl{};
    int limit = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? int(rl.rlim_cur) : 65536;
    for (int fd = 0; fd < limit; ++fd)
        if (::fcntl(fd, F_GETFD) >= 0) fds.insert(fd);
    return fds;
}

class FdLeakCheck : public testing::EmptyTestEventListener {
    std::set<int> before_;
    void OnTestStart(const testing::TestInfo&) override { before_ = open_fds(); }
    void OnTestEnd(const testing::TestInfo& info) override {
        std::set<int> after = open_fds();
        std::string leaked;
        for (int fd : after)
            if (!before_.count(fd)) leaked += " " + std::to_string(fd);
        EXPECT_TRUE(leaked.empty()) << info.test_suite_name() << "." << info.name()
                                    << " leaked fds:" << leaked;
    }
};

}  // namespace

int main(int argc, char** argv) {
    testing::InitGoogleTest(&argc, argv);
    testing::UnitTest::GetInstance()->listeners().Append(new FdLeakCheck);
    return RUN_ALL_TESTS();
}
