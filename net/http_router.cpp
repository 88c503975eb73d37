// Application: the route table. Routes are few, so a linear scan in insertion order is
// both the simplest and, for a handful of entries, the fastest lookup.
#include <weft/http_server.hpp>

namespace weft::http {

void Application::add_route(std::string method, std::string path, Handler handler) {
    if (path.empty() || path[0] != '/')
        throw HttpError(std::errc::invalid_argument, "route path must start with '/': '" + path + "'");
    bool prefix = path.back() == '*';
    if (prefix) path.pop_back();
    routes_.push_back({std::move(method), std::move(path), prefix, std::move(handler)});
}

Response Application::handle(Request& request) const {
    const std::string& method = request.method();
    const std::string& path = request.path();
    std::string allowed;
    for (const auto& r : routes_) {
        bool match = r.prefix ? path.compare(0, r.path.size(), r.path) == 0 : path == r.path;
        if (!match) continue;
        if (r.method == method || r.method == "*" || (method == "HEAD" && r.method == "GET"))
            return r.handler(request);
        if (allowed.find(r.method) == allowed.npos) allowed += (allowed.empty() ? "" : ", ") + r.method;
    }
    if (allowed.empty()) return Response::text("Not Found\n", 404);
    Response r = Response::text("Method Not Allowed\n", 405);
    r.headers.add("Allow", allowed);
    return r;
}

}  // namespace weft::http
