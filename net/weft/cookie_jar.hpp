// CookieJar: the HTTP client's cookies (aiohttp's CookieJar). Set-Cookie headers of every
// response a ClientSession reads — the hops of a redirect included — go in; each request
// gets a Cookie header with the cookies whose domain, path and scheme match its URL, so a
// site that sets a cookie and redirects works as in a browser. RFC 6265's rules, without
// a public-suffix list (as aiohttp). Loop thread only, as the session that holds it.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <weft/http.hpp>

namespace weft::http {

struct Cookie {
    std::string name, value;
    std::string domain;       // lower case, without a leading dot
    std::string path = "/";
    bool host_only = true;    // no Domain attribute: sent to exactly `domain`, not its subdomains
    bool secure = false;      // sent over https only
    bool http_only = false;   // kept for the record: a client has no scripts to hide it from
    // From Max-Age (which wins) or Expires; none: until the session ends.
    std::optional<std::chrono::system_clock::time_point> expires;
};

struct CookieJarOptions {
    // aiohttp's unsafe=: cookies of hosts named by an IP address are refused (in and out)
    // unless this is set, as browsers and aiohttp do.
    bool unsafe = false;
};

class CookieJar {
public:
    // Bounds against a server that sets cookies without end: a cookie's name and value
    // together (RFC 6265's minimum a client must take), and the jar (the oldest goes first).
    static constexpr size_t kMaxCookieSize = 4096;
    static constexpr size_t kMaxCookies = 3000;

    CookieJar() = default;  // not explicit: options structs may leave a jar out
    explicit CookieJar(CookieJarOptions options) : options_(options) {}

    // Takes every Set-Cookie of a response from `url`. Malformed ones, and ones for a
    // domain `url` may not set, are ignored (RFC 6265 §5.3); an expired one (Max-Age=0, an
    // Expires in the past) deletes the cookie it names.
    void update_cookies(const Headers& response_headers, const Url& url);
    void update_cookie(std::string_view set_cookie, const Url& url);  // one Set-Cookie value
    // The cookies to send to `url`, longest path first.
    std::vector<Cookie> filter_cookies(const Url& url) const;
    // The Cookie header value for `url` ("a=1; b=2"), empty if none.
    std::string cookie_header(const Url& url) const;

    void clear() noexcept { cookies_.clear(); }
    void clear_domain(std::string_view domain);  // the domain and its subdomains
    size_t size() const noexcept { return cookies_.size(); }
    const std::vector<Cookie>& cookies() const noexcept { return cookies_; }  // oldest first

private:
    CookieJarOptions options_;
    std::vector<Cookie> cookies_;  // in creation order (a replaced cookie keeps its place)
};

}  // namespace weft::http
