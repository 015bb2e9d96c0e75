// A watcher of GET /v1/events for tests: a raw HTTP/1.1 connection on
// loopback that reads the Server-Sent Events stream, decoding the chunked
// body and the SSE frames in it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock::test {

struct SseEvent {
  std::string id;
  std::string name;
  std::string data;
};

// One watcher: a raw HTTP/1.1 connection reading the stream, decoding the
// chunked body and the SSE frames in it.
class Watcher {
 public:
  Watcher(uint16_t port, const char* token, const std::string& last_event_id = "") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    std::string ask = "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    if (token != nullptr) ask += std::string("Authorization: Bearer ") + token + "\r\n";
    if (!last_event_id.empty()) ask += "Last-Event-ID: " + last_event_id + "\r\n";
    ask += "\r\n";
    (void)::send(fd_, ask.data(), ask.size(), MSG_NOSIGNAL);
  }
  ~Watcher() {
    if (fd_ >= 0) ::close(fd_);
  }

  // The response's status, once its head arrived (0 if it did not).
  unsigned Status() {
    ReadUntil([&] { return head_done_; }, std::chrono::seconds(10));
    return status_;
  }
  const std::string& head() const { return head_; }

  // Waits until an event matching `match` arrived; false on timeout.
  bool WaitFor(const std::function<bool(const SseEvent&)>& match,
               std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    return ReadUntil(
        [&] {
          for (const SseEvent& e : events_) {
            if (match(e)) return true;
          }
          return false;
        },
        timeout);
  }

  // Reads whatever arrives within `for_how_long`.
  void Drain(std::chrono::milliseconds for_how_long) {
    ReadUntil([] { return false; }, for_how_long);
  }

  const std::vector<SseEvent>& events() const { return events_; }
  // What arrived and is not yet a whole frame (for failure messages).
  std::string unparsed() const { return raw_ + "|" + body_; }

  // The request ids of the "request" events seen.
  std::vector<std::string> RequestIds() const {
    std::vector<std::string> ids;
    for (const SseEvent& e : events_) {
      if (e.name == "request") ids.push_back(nlohmann::json::parse(e.data).value("request_id", ""));
    }
    return ids;
  }

 private:
  bool ReadUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return done();
      char buffer[4096];
      const ssize_t got = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) return done();
      raw_.append(buffer, static_cast<size_t>(got));
      Parse();
    }
    return true;
  }

  void Parse() {
    if (!head_done_) {
      const size_t end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      head_ = raw_.substr(0, end);
      status_ = static_cast<unsigned>(std::stoi(head_.substr(9, 3)));
      raw_.erase(0, end + 4);
      head_done_ = true;
      chunked_ = head_.find("Transfer-Encoding: chunked") != std::string::npos ||
                 head_.find("transfer-encoding: chunked") != std::string::npos;
    }
    if (!chunked_) return;
    // Chunks into the body text, then whole frames out of it.
    for (;;) {
      const size_t line = raw_.find("\r\n");
      if (line == std::string::npos) break;
      const size_t size = std::stoul(raw_.substr(0, line), nullptr, 16);
      if (raw_.size() < line + 2 + size + 2) break;
      body_.append(raw_, line + 2, size);
      raw_.erase(0, line + 2 + size + 2);
      if (size == 0) break;
    }
    for (;;) {
      const size_t end = body_.find("\n\n");
      if (end == std::string::npos) break;
      const std::string frame = body_.substr(0, end);
      body_.erase(0, end + 2);
      SseEvent event;
      size_t at = 0;
      while (at < frame.size()) {
        size_t eol = frame.find('\n', at);
        if (eol == std::string::npos) eol = frame.size();
        const std::string field = frame.substr(at, eol - at);
        at = eol + 1;
        if (field.rfind("id: ", 0) == 0) event.id = field.substr(4);
        if (field.rfind("event: ", 0) == 0) event.name = field.substr(7);
        if (field.rfind("data: ", 0) == 0) event.data = field.substr(6);
      }
      if (!event.name.empty()) events_.push_back(std::move(event));
    }
  }

  int fd_ = -1;
  std::string raw_, head_, body_;
  bool head_done_ = false, chunked_ = false;
  unsigned status_ = 0;
  std::vector<SseEvent> events_;
};

}  // namespace airlock::test
