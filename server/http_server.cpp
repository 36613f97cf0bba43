// The one translation unit that includes Beast: the acceptor, the per-connection session and the
// bridge from the engine's thread to a connection's strand.
#include "server/http_server.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

#include "storage/error.h"

namespace strata::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
class Session;
}

struct HttpServer::Impl {
  Impl(App& a, ServerOptions o) : app(a), opts(std::move(o)) {}

  App& app;
  ServerOptions opts;
  std::atomic<int> connections{0};
  std::atomic<int> jobs{0};  // generations whose last bytes are not yet sent
  std::mutex mu;
  std::condition_variable cv;
  bool stop_flag = false;
  bool started = false, stopped = false;

  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::signal_set signals{ioc, SIGINT, SIGTERM};
  std::vector<std::thread> threads;

  std::chrono::steady_clock::duration idle() const {
    return std::chrono::milliseconds(int64_t(opts.idle_timeout_s * 1000));
  }
  void do_accept();
  void reject(tcp::socket s);
};

namespace {

using Event = std::variant<engine::TokenEvent, engine::FinishEvent>;

// Events handed over from the engine's thread; the session's strand takes them.
struct EventQueue {
  std::mutex mu;
  std::vector<Event> events;
  bool posted = false;  // a drain is already on its way to the strand
};

bool is_http_error(const beast::error_code& ec) { return std::string_view(ec.category().name()) == "beast.http"; }

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& s, HttpServer::Impl& srv) : stream_(std::move(s)), srv_(srv) { ++srv_.connections; }
  ~Session() { --srv_.connections; }

  void start() { net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::do_read, shared_from_this())); }

  // On the strand, after the engine's thread queued events.
  void drain() {
    std::vector<Event> evs;
    {
      std::lock_guard lk(queue_->mu);
      evs.swap(queue_->events);
      queue_->posted = false;
    }
    if (!gen_) return;
    try {
      for (auto& ev : evs) {
        if (auto* t = std::get_if<engine::TokenEvent>(&ev)) on_token(*t);
        else on_finish(std::get<engine::FinishEvent>(ev));
      }
    } catch (const std::exception& e) {
      server_log()->error("formatting a response failed: {}", e.what());
      abandon();
    }
    pump();
  }

 private:
  // ---- reading requests ----
  void do_read() {
    parser_.emplace();
    parser_->header_limit(uint32_t(srv_.opts.header_limit));
    parser_->body_limit(srv_.opts.body_limit);
    stream_.expires_after(srv_.idle());
    http::async_read_header(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t) {
    if (ec) return on_read_error(ec);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      stream_.expires_after(srv_.idle());
      net::async_write(stream_, net::buffer(*cont), [self = shared_from_this(), cont](beast::error_code wec, size_t) {
        if (wec) return;
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(srv_.idle());
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) return on_read_error(ec);
    try {
      handle();
    } catch (const std::exception& e) {
      server_log()->error("request failed: {}", e.what());
      write_response(srv_.app.error(target_, ApiError(500, fmt::format("internal error: {}", e.what()), "", "internal_error")),
                     true);
    }
  }

  void on_read_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == http::error::partial_message ||
        ec == net::error::operation_aborted)
      return do_close();
    target_ = parser_ && parser_->is_header_done() ? std::string(parser_->get().target()) : std::string();
    endpoint_ = "other";
    if (ec == http::error::body_limit)
      return write_response(srv_.app.error(target_, ApiError(413, fmt::format("The request body is larger than the limit of {} bytes.",
                                                                              srv_.opts.body_limit), "", "body_too_large")), true);
    if (ec == http::error::header_limit)
      return write_response(srv_.app.error(target_, ApiError(431, fmt::format("The request header is larger than the limit of {} bytes.",
                                                                              srv_.opts.header_limit), "", "header_too_large")), true);
    if (is_http_error(ec))
      return write_response(srv_.app.error(target_, ApiError(400, fmt::format("Malformed HTTP request: {}", ec.message()), "",
                                                             "bad_request")), true);
    // A socket error: the client is gone.
  }

  void handle() {
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = std::move(req.body());
    r.authorization = std::string(req[http::field::authorization]);
    target_ = r.target;
    t_start_ = std::chrono::steady_clock::now();
    Routed routed = srv_.app.route(r);
    endpoint_ = routed.endpoint;
    if (!routed.generation) return write_response(std::move(routed.response), false);
    start_generation(std::move(routed.generation));
  }

  // ---- plain responses ----
  void write_response(HttpResponse r, bool close) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "strata");
    if (!r.content_type.empty()) res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->keep_alive(keep_alive_ && !close);
    res->prepare_payload();
    srv_.app.metrics().count_request(endpoint_, r.status);
    log_request(r.status);
    stream_.expires_after(srv_.idle());
    http::async_write(stream_, *res, [self = shared_from_this(), res, close](beast::error_code ec, size_t) {
      if (ec) return;
      if (close || res->need_eof()) return self->do_close(true);
      self->do_read();
    });
  }

  void log_request(int status) const {
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_start_).count();
    server_log()->info("{} {} {:.1f} ms", target_, status, ms);
  }

  // Half-closes, then reads and drops what the client still sends for a moment (so an error
  // sent before the whole body arrived is read by the client rather than lost to a reset).
  void do_close(bool linger = false) {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (!linger || ec) return;
    discard_ = std::make_shared<std::array<char, 16384>>();
    discarded_ = 0;
    discard_more();
  }

  void discard_more() {
    stream_.expires_after(std::chrono::seconds(2));
    stream_.async_read_some(net::buffer(*discard_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->discarded_ += n;
      if (ec || self->discarded_ > (64u << 20)) return;
      self->discard_more();
    });
  }

  // ---- generations ----
  void start_generation(std::unique_ptr<Generation> g) {
    gen_ = std::move(g);
    queue_ = std::make_shared<EventQueue>();
    outcome_ = Outcome{};
    streaming_ = gen_->prepared.stream;
    finished_ = client_gone_ = final_sent_ = false;
    pending_.clear();
    last_token_t_ = 0;

    engine::Sink sink;
    std::weak_ptr<Session> ws = weak_from_this();
    auto queue = queue_;
    auto ex = stream_.get_executor();
    auto push = [queue, ws, ex](Event ev) noexcept {
      try {
        bool post = false;
        {
          std::lock_guard lk(queue->mu);
          queue->events.push_back(std::move(ev));
          post = !queue->posted;
          queue->posted = true;
        }
        if (post) net::post(ex, [ws] {
            if (auto s = ws.lock()) s->drain();
          });
      } catch (...) {
        // Out of memory on the engine's thread: the event is lost; nothing may be thrown there.
      }
    };
    sink.on_token = [push](const engine::TokenEvent& t) { push(t); };
    sink.on_finish = [push](const engine::FinishEvent& f) { push(f); };

    const engine::SubmitResult r = gen_->model->engine.submit(gen_->prepared.request, std::move(sink));
    if (!r.accepted) {
      HttpResponse resp = srv_.app.refused(*gen_, r);
      gen_.reset();
      queue_.reset();
      return write_response(std::move(resp), false);
    }
    id_ = r.id;
    hold_ = shared_from_this();  // alive until the last event is handled, whatever the socket does
    ++srv_.jobs;
    watch();
    if (!streaming_) return;

    header_ = std::make_unique<http::response<http::empty_body>>(http::status::ok, 11);
    header_->set(http::field::server, "strata");
    header_->set(http::field::content_type, gen_->format->stream_content_type());
    header_->set(http::field::cache_control, "no-cache");
    for (auto& [k, v] : cors_headers()) header_->set(k, v);
    header_->keep_alive(keep_alive_);
    header_->chunked(true);
    serializer_ = std::make_unique<http::response_serializer<http::empty_body>>(*header_);
    pending_ = gen_->format->stream_begin();
    writing_ = true;
    stream_.expires_after(srv_.idle());
    http::async_write_header(stream_, *serializer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) self->abandon();
      self->pump();
    });
  }

  std::vector<std::pair<std::string, std::string>> cors_headers() const {
    HttpResponse r;
    srv_.app.decorate(r);
    return r.headers;
  }

  void on_token(const engine::TokenEvent& t) {
    if (last_token_t_ > 0 && t.t >= last_token_t_) srv_.app.metrics().observe_inter_token(t.t - last_token_t_);
    last_token_t_ = t.t;
    if (streaming_) {
      if (!client_gone_) pending_ += gen_->format->stream_token(t);
    } else {
      outcome_.add(t);
    }
  }

  void on_finish(const engine::FinishEvent& f) {
    finished_ = true;
    if (f.completion_tokens > 0 && f.t_first_token > 0 && f.t_first_token >= f.t_submit)
      srv_.app.metrics().observe_ttft(f.t_first_token - f.t_submit);
    if (f.reason == engine::FinishReason::Error) server_log()->warn("{}: generation failed: {}", target_, f.error);
    if (streaming_) {
      if (!client_gone_) pending_ += gen_->format->stream_finish(f);
    } else {
      outcome_.end(f);
    }
  }

  // The client is gone (or the response cannot continue): stop the sequence, write nothing more.
  void abandon() {
    if (client_gone_) return;
    client_gone_ = true;
    if (!finished_ && gen_) gen_->model->engine.cancel(id_);
  }

  // Writes what is pending; ends the job once the last bytes are out.
  void pump() {
    if (writing_ || !gen_) return;
    if (client_gone_) {
      if (!finished_) return;
      auto self = end_job(0);
      return do_close();
    }
    if (!streaming_) {
      if (!finished_) return;
      HttpResponse r = srv_.app.finished(*gen_, outcome_);
      auto self = end_job(-1);
      return write_response(std::move(r), false);
    }
    if (!pending_.empty() || (finished_ && !final_sent_)) {
      out_.clear();
      if (!pending_.empty()) out_ = fmt::format("{:x}\r\n{}\r\n", pending_.size(), pending_);
      pending_.clear();
      if (finished_) {
        out_ += "0\r\n\r\n";
        final_sent_ = true;
      }
      writing_ = true;
      stream_.expires_after(srv_.idle());
      net::async_write(stream_, net::buffer(out_), [self = shared_from_this()](beast::error_code ec, size_t) {
        self->writing_ = false;
        if (ec) self->abandon();
        self->pump();
      });
      return;
    }
    if (finished_ && final_sent_) {
      auto self = end_job(200);
      if (keep_alive_) return do_read();
      return do_close();
    }
  }

  // Clears the job; `status` > 0 is counted for metrics (the streamed 200), 0 a client that went
  // away (counted as 499), -1 nothing (write_response counts). Returns the self-reference it held.
  std::shared_ptr<Session> end_job(int status) {
    ++watch_seq_;
    if (watching_) {
      beast::error_code ec;
      stream_.socket().cancel(ec);
      watching_ = false;
    }
    if (status > 0) {
      srv_.app.metrics().count_request(endpoint_, status);
      log_request(status);
    } else if (status == 0) {
      srv_.app.metrics().count_request(endpoint_, 499);  // nginx's "client closed request"
      server_log()->info("{}: client went away, sequence cancelled", target_);
    }
    gen_.reset();
    queue_.reset();
    serializer_.reset();
    header_.reset();
    outcome_ = Outcome{};
    --srv_.jobs;
    srv_.cv.notify_all();
    return std::move(hold_);
  }

  // Notices a client that closes its connection while its request is still generating.
  void watch() {
    watching_ = true;
    const uint64_t seq = watch_seq_;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), seq](beast::error_code ec) {
      self->on_readable(ec, seq);
    });
  }

  void on_readable(beast::error_code ec, uint64_t seq) {
    if (seq != watch_seq_) return;
    watching_ = false;
    if (ec || !gen_) return;
    char c;
    const ssize_t n = ::recv(stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return;  // the client sent more (a pipelined request): it is still there
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return watch();
    abandon();
    pump();
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& srv_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  std::string target_, endpoint_ = "other";
  std::chrono::steady_clock::time_point t_start_ = std::chrono::steady_clock::now();
  std::shared_ptr<std::array<char, 16384>> discard_;
  size_t discarded_ = 0;

  // The running generation (at most one per connection).
  std::unique_ptr<Generation> gen_;
  std::shared_ptr<EventQueue> queue_;
  std::shared_ptr<Session> hold_;
  engine::RequestId id_ = 0;
  Outcome outcome_;
  bool streaming_ = false, finished_ = false, client_gone_ = false, final_sent_ = false, writing_ = false;
  bool watching_ = false;
  uint64_t watch_seq_ = 0;
  double last_token_t_ = 0;
  std::string pending_, out_;
  std::unique_ptr<http::response<http::empty_body>> header_;
  std::unique_ptr<http::response_serializer<http::empty_body>> serializer_;
};

}  // namespace

void HttpServer::Impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
    if (!acceptor.is_open()) return;
    if (ec) {
      server_log()->warn("accept failed: {}", ec.message());
    } else if (connections.load() >= opts.max_connections) {
      reject(std::move(s));
    } else {
      std::make_shared<Session>(std::move(s), *this)->start();
    }
    do_accept();
  });
}

void HttpServer::Impl::reject(tcp::socket s) {
  app.metrics().count_request("other", 503);
  auto sock = std::make_shared<tcp::socket>(std::move(s));
  const std::string body = dump(openai_error_body(ApiError(503, "Too many connections; try again later.", "", "too_many_connections")));
  auto msg = std::make_shared<std::string>(fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nServer: strata\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
      "Connection: close\r\nContent-Length: {}\r\n\r\n{}", body.size(), body));
  net::async_write(*sock, net::buffer(*msg), [sock, msg](beast::error_code, size_t) {
    beast::error_code ec;
    sock->shutdown(tcp::socket::shutdown_send, ec);
  });
}

HttpServer::HttpServer(App& app, ServerOptions opts) : impl_(std::make_unique<Impl>(app, std::move(opts))) {}

HttpServer::~HttpServer() { stop(0); }

uint16_t HttpServer::start() {
  Impl& s = *impl_;
  beast::error_code ec;
  tcp::resolver resolver(s.ioc);
  auto results = resolver.resolve(s.opts.host, std::to_string(s.opts.port), tcp::resolver::passive, ec);
  if (ec || results.empty()) fail("cannot resolve --host '{}': {}", s.opts.host, ec.message());
  const tcp::endpoint ep = results.begin()->endpoint();
  s.acceptor.open(ep.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(ep, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) fail("cannot listen on {}:{}: {}", s.opts.host, s.opts.port, ec.message());
  const uint16_t port = s.acceptor.local_endpoint().port();
  s.work.emplace(net::make_work_guard(s.ioc));
  s.do_accept();
  s.signals.async_wait([this](beast::error_code sec, int sig) {
    if (sec) return;
    server_log()->info("signal {}: shutting down", sig);
    request_stop();
  });
  const int n = std::max(1, s.opts.threads);
  for (int i = 0; i < n; ++i) {
    s.threads.emplace_back([&s] {
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          server_log()->error("uncaught exception in a handler: {}", e.what());
        }
      }
    });
  }
  s.started = true;
  return port;
}

void HttpServer::request_stop() {
  {
    std::lock_guard lk(impl_->mu);
    impl_->stop_flag = true;
  }
  impl_->cv.notify_all();
}

bool HttpServer::stop_requested() const {
  std::lock_guard lk(impl_->mu);
  return impl_->stop_flag;
}

void HttpServer::wait_for_stop() {
  std::unique_lock lk(impl_->mu);
  impl_->cv.wait(lk, [&] { return impl_->stop_flag; });
}

void HttpServer::stop_accepting() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  std::promise<void> done;
  net::post(s.acceptor.get_executor(), [&s, &done] {
    beast::error_code ec;
    s.acceptor.close(ec);
    done.set_value();
  });
  done.get_future().wait();
}

void HttpServer::stop(double drain_s) {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  stop_accepting();
  {
    std::unique_lock lk(s.mu);
    s.cv.wait_for(lk, std::chrono::duration<double>(std::max(0.0, drain_s)), [&] { return s.jobs.load() == 0; });
  }
  s.stopped = true;
  s.work.reset();
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

}  // namespace strata::server
