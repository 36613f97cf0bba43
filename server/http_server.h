// The HTTP/1.1 server (Boost.Beast on Asio; all of Beast stays in http_server.cpp): one
// io_context run by a small thread pool, a strand per connection, keep-alive, limits on body,
// header, connections and idle time, and streamed responses sent with chunked encoding as the
// engine's events arrive. Requests are routed by App; generations run on App's LoadedModel.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server/app.h"

namespace strata::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;          // 0: any free port
  int threads = 2;               // threads running the io_context
  size_t body_limit = 4u << 20;  // larger bodies: 413
  size_t header_limit = 8192;    // larger headers: 431
  int max_connections = 256;     // beyond: 503 and close
  double idle_timeout_s = 60;    // a connection silent this long (reading or writing) is closed
};

class HttpServer {
 public:
  HttpServer(App& app, ServerOptions opts);
  ~HttpServer();  // stop(0)
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens, installs the SIGINT/SIGTERM handler and starts the threads; returns the
  // bound port. strata::Error when the address cannot be bound.
  uint16_t start();
  // Blocks until SIGINT/SIGTERM arrives (at once if one already has) or request_stop() is called.
  void wait_for_stop();
  void request_stop();
  bool stop_requested() const;
  // Closes the listening socket; open connections keep going.
  void stop_accepting();
  // Waits up to `drain_s` seconds for running generations to send their last bytes, then
  // stops the threads and closes every connection.
  void stop(double drain_s);

  struct Impl;  // public so the connection code in http_server.cpp can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::server
