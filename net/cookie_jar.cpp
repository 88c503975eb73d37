// CookieJar: RFC 6265 §5.2's Set-Cookie parsing and §5.4's matching. Expires dates are read
// with strptime in the forms servers send (IMF-fixdate, RFC 850, asctime, and the
// Netscape one with dashes); a date none of them reads is ignored, leaving a session
// cookie, as the RFC says.
#include <weft/cookie_jar.hpp>

#include <arpa/inet.h>
#include <time.h>

#include <algorithm>
#include <charconv>

namespace weft::http {

namespace {

using SysClock = std::chrono::system_clock;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    return out;
}

bool is_ip_address(const std::string& host) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// §5.1.3: host is the domain, or a name under it (never for an IP address).
bool domain_match(const std::string& host, const std::string& domain) {
    if (host == domain) return true;
    return host.size() > domain.size() && host.ends_with(domain) &&
           host[host.size() - domain.size() - 1] == '.' && !is_ip_address(host);
}

// §5.1.4: the request path is the cookie path, or under it.
bool path_match(std::string_view request_path, const std::string& cookie_path) {
    if (request_path == cookie_path) return true;
    if (!request_path.starts_with(cookie_path)) return false;
    return cookie_path.back() == '/' || request_path[cookie_path.size()] == '/';
}

std::string_view path_of(const Url& url) {
    std::string_view t = url.target;
    return t.substr(0, t.find('?'));
}

// §5.1.4's default-path: the request path's directory.
std::string default_path(const Url& url) {
    std::string_view p = path_of(url);
    if (p.empty() || p[0] != '/') return "/";
    size_t slash = p.rfind('/');
    return slash == 0 ? "/" : std::string(p.substr(0, slash));
}

std::optional<SysClock::time_point> parse_expires(std::string_view value) {
    static constexpr const char* kFormats[] = {
        "%a, %d %b %Y %H:%M:%S GMT",   // Sun, 06 Nov 1994 08:49:37 GMT (IMF-fixdate)
        "%a, %d-%b-%Y %H:%M:%S GMT",   // Sun, 06-Nov-1994 08:49:37 GMT (Netscape)
        "%A, %d-%b-%y %H:%M:%S GMT",   // Sunday, 06-Nov-94 08:49:37 GMT (RFC 850)
        "%a %b %d %H:%M:%S %Y",        // Sun Nov  6 08:49:37 1994 (asctime)
    };
    std::string text(trim(value));
    for (const char* format : kFormats) {
        tm t{};
        const char* end = ::strptime(text.c_str(), format, &t);
        if (!end || !trim(end).empty()) continue;
        time_t when = ::timegm(&t);
        if (when == time_t(-1) && t.tm_year != 69) continue;
        return SysClock::from_time_t(when);
    }
    return std::nullopt;
}

}  // namespace

void CookieJar::update_cookies(const Headers& response_headers, const Url& url) {
    for (std::string_view value : response_headers.get_all("Set-Cookie")) update_cookie(value, url);
}

void CookieJar::update_cookie(std::string_view set_cookie, const Url& url) {
    std::string host = lower(url.host);
    if (!options_.unsafe && is_ip_address(host)) return;
    size_t semi = set_cookie.find(';');
    std::string_view pair = set_cookie.substr(0, semi);
    size_t eq = pair.find('=');
    if (eq == pair.npos) return;  // §5.2: no '=': ignored
    Cookie c;
    c.name = trim(pair.substr(0, eq));
    c.value = trim(pair.substr(eq + 1));
    if (c.name.empty() || c.name.size() + c.value.size() > kMaxCookieSize) return;
    if (c.value.size() >= 2 && c.value.front() == '"' && c.value.back() == '"')
        c.value = c.value.substr(1, c.value.size() - 2);  // as Python's SimpleCookie gives it

    std::optional<SysClock::time_point> max_age, expires;
    std::string domain_attr;
    bool has_path = false;
    std::string_view rest = semi == set_cookie.npos ? std::string_view() : set_cookie.substr(semi + 1);
    while (!rest.empty()) {
        size_t next = rest.find(';');
        std::string_view attr = rest.substr(0, next);
        rest = next == rest.npos ? std::string_view() : rest.substr(next + 1);
        size_t aeq = attr.find('=');
        std::string name = lower(trim(attr.substr(0, aeq)));
        std::string_view value = aeq == attr.npos ? std::string_view() : trim(attr.substr(aeq + 1));
        if (name == "domain") {
            if (!value.empty() && value[0] == '.') value.remove_prefix(1);
            if (!value.empty()) domain_attr = lower(value);
        } else if (name == "path") {
            if (!value.empty() && value[0] == '/') {
                c.path = value;
                has_path = true;
            }
        } else if (name == "max-age") {
            long long seconds = 0;
            auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
            if (ec == std::errc() && p == value.data() + value.size()) {
                // Capped at ~100 years: a huge Max-Age must not overflow the clock.
                seconds = std::min<long long>(seconds, 100LL * 365 * 24 * 3600);
                max_age = seconds <= 0 ? SysClock::time_point::min() : SysClock::now() + std::chrono::seconds(seconds);
            }
        } else if (name == "expires") {
            if (auto when = parse_expires(value)) expires = when;
        } else if (name == "secure") {
            c.secure = true;
        } else if (name == "httponly") {
            c.http_only = true;
        }
    }
    c.expires = max_age ? max_age : expires;  // §5.3 step 3: Max-Age wins
    if (!domain_attr.empty()) {
        // A host may set a cookie for itself or a parent domain, never for another site;
        // an IP address only for itself.
        if (!domain_match(host, domain_attr)) return;
        c.domain = domain_attr;
        c.host_only = false;
    } else {
        c.domain = host;
    }
    if (!has_path) c.path = default_path(url);

    auto same = std::find_if(cookies_.begin(), cookies_.end(), [&](const Cookie& o) {
        return o.name == c.name && o.domain == c.domain && o.path == c.path;
    });
    if (c.expires && *c.expires <= SysClock::now()) {  // an expiry in the past deletes it
        if (same != cookies_.end()) cookies_.erase(same);
        return;
    }
    if (same != cookies_.end()) {
        *same = std::move(c);
        return;
    }
    if (cookies_.size() >= kMaxCookies) cookies_.erase(cookies_.begin());
    cookies_.push_back(std::move(c));
}

std::vector<Cookie> CookieJar::filter_cookies(const Url& url) const {
    std::vector<Cookie> out;
    std::string host = lower(url.host);
    if (!options_.unsafe && is_ip_address(host)) return out;
    std::string_view path = path_of(url);
    auto now = SysClock::now();
    for (const Cookie& c : cookies_) {
        if (c.expires && *c.expires <= now) continue;
        if (c.host_only ? host != c.domain : !domain_match(host, c.domain)) continue;
        if (!path_match(path, c.path)) continue;
        if (c.secure && !url.is_https()) continue;
        out.push_back(c);
    }
    // §5.4: longer paths first; equal ones in creation order (stable_sort keeps it).
    std::stable_sort(out.begin(), out.end(),
                     [](const Cookie& a, const Cookie& b) { return a.path.size() > b.path.size(); });
    return out;
}

std::string CookieJar::cookie_header(const Url& url) const {
    std::string out;
    for (const Cookie& c : filter_cookies(url)) {
        if (!out.empty()) out += "; ";
        out += c.name;
        out += '=';
        out += c.value;
    }
    return out;
}

void CookieJar::clear_domain(std::string_view domain) {
    std::string d = lower(domain);
    std::erase_if(cookies_, [&](const Cookie& c) { return domain_match(c.domain, d); });
}

}  // namespace weft::http
