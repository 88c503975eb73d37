// libFuzzer target: the stream reader (read, read_exactly, read_line, read_until) over a
// socketpair, with the data arriving in fuzzer-chosen chunks and a fuzzer-chosen limit.
// Every answer is checked against the bytes actually sent: nothing is lost, duplicated
// or reordered, separators and limits are honoured, and only the documented errors come.
#include <weft/weft.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "stream_reader_fuzz: %s %s\n", what, detail.c_str());
    std::abort();
}

void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

enum class Op { read, read_exactly, read_line, read_until };

struct Step {
    Op op;
    size_t n;
    std::string sep;
};

struct Plan {
    size_t limit;
    std::vector<Step> steps;
    std::vector<size_t> chunks;  // sizes in which the data is written (the rest goes last)
    std::string data;
};

Plan make_plan(const uint8_t* bytes, size_t size) {
    FuzzedDataProvider in(bytes, size);
    Plan p;
    p.limit = in.ConsumeIntegralInRange<size_t>(1, 300);
    static const char* const kSeparators[] = {"\n", "\r\n", "|", "ab", "\0\0"};
    size_t steps = in.ConsumeIntegralInRange<size_t>(0, 24);
    for (size_t i = 0; i < steps; ++i) {
        Step s{Op(in.ConsumeIntegralInRange<int>(0, 3)), in.ConsumeIntegralInRange<size_t>(0, 400),
               {}};
        size_t which = in.ConsumeIntegralInRange<size_t>(0, 4);
        s.sep = which == 4 ? std::string(2, '\0') : kSeparators[which];
        p.steps.push_back(s);
    }
    size_t chunks = in.ConsumeIntegralInRange<size_t>(0, 16);
    for (size_t i = 0; i < chunks; ++i) p.chunks.push_back(in.ConsumeIntegralInRange<size_t>(1, 200));
    p.data = in.ConsumeRemainingBytesAsString();
    return p;
}

// The reader's side: runs the steps and checks each answer against data[pos...].
void read_and_check(weft::Stream& s, const Plan& p) {
    const std::string& data = p.data;
    size_t pos = 0;
    for (const Step& step : p.steps) {
        std::string_view rest = std::string_view(data).substr(pos);
        switch (step.op) {
            case Op::read: {
                std::string got = s.read(step.n);
                if (step.n == 0) {
                    check(got.empty(), "read(0) returned bytes");
                    break;
                }
                check(got.size() <= step.n, "read returned more than asked");
                check(!got.empty() || rest.empty(), "read returned nothing before EOF");
                check(rest.substr(0, got.size()) == got, "read returned the wrong bytes");
                pos += got.size();
                break;
            }
            case Op::read_exactly: {
                try {
                    std::string got = s.read_exactly(step.n);
                    check(got == rest.substr(0, step.n) && got.size() == step.n,
                          "read_exactly returned the wrong bytes");
                    pos += got.size();
                } catch (const weft::IncompleteReadError& e) {
                    check(rest.size() < step.n, "IncompleteReadError with enough data sent");
                    check(e.partial() == rest, "IncompleteReadError lost or invented bytes");
                    check(s.at_eof(), "not at EOF after IncompleteReadError");
                    pos = data.size();
                }
                break;
            }
            case Op::read_until: {
                size_t at = rest.find(step.sep);
                try {
                    std::string got = s.read_until(step.sep);
                    check(at != std::string_view::npos, "read_until found a separator never sent");
                    check(got == rest.substr(0, at + step.sep.size()),
                          "read_until did not stop at the first separator");
                    check(got.size() <= p.limit, "read_until returned more than the limit");
                    pos += got.size();
                } catch (const weft::IncompleteReadError& e) {
                    check(at == std::string_view::npos, "EOF reported before a sent separator");
                    check(e.partial() == rest, "read_until at EOF lost or invented bytes");
                    pos = data.size();
                } catch (const weft::LimitOverrunError&) {
                    // Nothing is consumed; the line must really be over the limit.
                    check(at == std::string_view::npos || at + step.sep.size() > p.limit,
                          "LimitOverrunError for a line within the limit");
                }
                break;
            }
            case Op::read_line: {
                size_t at = rest.find('\n');
                try {
                    std::string got = s.read_line();
                    if (at == std::string_view::npos) {
                        check(got == rest, "read_line at EOF lost or invented bytes");
                    } else {
                        check(got == rest.substr(0, at + 1), "read_line did not stop at '\\n'");
                        check(got.size() <= p.limit, "read_line returned more than the limit");
                    }
                    pos += got.size();
                } catch (const weft::LimitOverrunError&) {
                    check(at == std::string_view::npos || at + 1 > p.limit,
                          "read_line overran for a line within the limit");
                    // The over-long line was dropped: through its '\n' if it had arrived,
                    // else whatever was buffered. Where that ends is timing, not data: the
                    // rest can only be checked for being a suffix from here on.
                    std::string tail = s.read_all();
                    check(rest.size() >= tail.size() &&
                              rest.substr(rest.size() - tail.size()) == tail,
                          "after an overrun the rest is not a suffix of what was sent");
                    return;
                }
                break;
            }
        }
    }
    check(s.read_all() == std::string_view(data).substr(pos), "read_all lost or invented bytes");
    check(s.at_eof(), "not at EOF after read_all");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
    Plan plan = make_plan(bytes, size);
    weft::StreamOptions options;
    options.limit = plan.limit;
    weft::run([&] {
        auto [reader, writer] = weft::stream_pair(options);
        auto sender = weft::spawn([&, &w = writer] {
            size_t at = 0;
            for (size_t n : plan.chunks) {
                if (at >= plan.data.size()) break;
                w.write(std::string_view(plan.data).substr(at, n));
                at += n;
                w.drain();
                weft::sleep(std::chrono::milliseconds(0));  // let the reader see a partial chunk
            }
            if (at < plan.data.size()) w.write(std::string_view(plan.data).substr(at));
            w.drain();
            w.write_eof();
        });
        read_and_check(reader, plan);
        sender.get();
    });
    return 0;
}
