#include "kernel/state/postgres_channel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>
#include <pqxx/notification>
#include <pqxx/pqxx>

#include "kernel/state/postgres_target.h"

namespace airlock {

namespace {

using Connection = std::unique_ptr<pqxx::connection>;

bool ValidChannelName(std::string_view name) {
  return !name.empty() && name.size() <= 63 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// A payload on the wire: the sender, a newline, what it sent.
std::string Tagged(const std::string& sender, std::string_view payload) {
  std::string wire;
  wire.reserve(sender.size() + 1 + payload.size());
  wire.append(sender).push_back('\n');
  wire.append(payload);
  return wire;
}

// Hands what arrives on the channel, but the sender's own, to the receiver.
class Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection_base& connection, const std::string& channel, const std::string& self,
           const PostgresChannel::Receiver& receive)
      : pqxx::notification_receiver(connection, channel), self_(self), receive_(receive) {}

  void operator()(const std::string& wire, int /*backend_pid*/) override {
    const size_t newline = wire.find('\n');
    if (newline == std::string::npos) return;  // not one of ours
    if (std::string_view(wire).substr(0, newline) == self_) return;
    receive_(std::string_view(wire).substr(newline + 1));
  }

 private:
  const std::string& self_;
  const PostgresChannel::Receiver& receive_;
};

}  // namespace

class PostgresChannel::Impl {
 public:
  Impl(pg::Target target, PostgresChannelOptions options, Receiver receive)
      : target_(std::move(target)), options_(std::move(options)), receive_(std::move(receive)) {}

  ~Impl() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (sender_.joinable()) sender_.join();
    if (listener_.joinable()) listener_.join();
  }

  // Connects the listener here, so that Open returns listening.
  Status Start() {
    AIRLOCK_ASSIGN_OR_RETURN(Connection listening, target_.Connect());
    std::unique_ptr<Listener> receiver;
    try {
      receiver =
          std::make_unique<Listener>(*listening, options_.channel, options_.sender, receive_);
      listening->get_notifs();  // the LISTEN is sent with the first call
    } catch (const std::exception& e) {
      return target_.Failure("listening on channel " + options_.channel, e);
    }
    listener_ = std::thread([this, c = std::move(listening), r = std::move(receiver)]() mutable {
      Listen(std::move(c), std::move(r));
    });
    sender_ = std::thread([this] { SendLoop(); });
    return Status::Ok();
  }

  bool Send(std::string payload) {
    if (payload.size() > kMaxPayload) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= options_.max_queued) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
      queue_.push_back(std::move(payload));
    }
    cv_.notify_all();
    return true;
  }

  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  bool Stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  // Sleeps `retry` unless stopped first; false once stopping.
  bool PauseBeforeRetry() {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, options_.retry, [&] { return stopping_; });
  }

  void Listen(Connection connection, std::unique_ptr<Listener> receiver) {
    while (!Stopping()) {
      try {
        if (!connection) {
          auto connected = target_.Connect();
          if (!connected.ok()) {
            spdlog::warn("channel {}: {}", options_.channel, connected.status().message());
            if (!PauseBeforeRetry()) return;
            continue;
          }
          connection = std::move(connected).value();
          receiver =
              std::make_unique<Listener>(*connection, options_.channel, options_.sender, receive_);
          connection->get_notifs();
        }
        // Wakes at least every 200 ms to notice a stop.
        connection->await_notification(0, 200000);
      } catch (const std::exception& e) {
        spdlog::warn("{}", target_.Failure("channel " + options_.channel, e).message());
        receiver.reset();
        connection.reset();
        if (!PauseBeforeRetry()) return;
      }
    }
  }

  void SendLoop() {
    Connection connection;
    while (true) {
      std::string payload;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        payload = std::move(queue_.front());
        queue_.pop_front();
      }
      // A payload is tried until it is sent or the channel stops.
      while (true) {
        try {
          if (!connection) {
            auto connected = target_.Connect();
            if (!connected.ok()) throw std::runtime_error(connected.status().message());
            connection = std::move(connected).value();
          }
          pqxx::nontransaction tx(*connection);
          tx.exec_params("SELECT pg_notify($1, $2)", options_.channel,
                         Tagged(options_.sender, payload));
          sent_.fetch_add(1, std::memory_order_relaxed);
          break;
        } catch (const std::exception& e) {
          spdlog::warn("{}", target_.Failure("channel " + options_.channel, e).message());
          connection.reset();
          if (!PauseBeforeRetry()) return;
        }
      }
    }
  }

  const pg::Target target_;
  const PostgresChannelOptions options_;
  const Receiver receive_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;  // guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> dropped_{0};
  std::thread listener_;
  std::thread sender_;
};

Result<std::unique_ptr<PostgresChannel>> PostgresChannel::Open(const Secret& dsn,
                                                               PostgresChannelOptions options,
                                                               Receiver receive) {
  if (!ValidChannelName(options.channel)) {
    return Status::InvalidArgument("a channel name is 1 to 63 lower-case letters, digits or _");
  }
  if (options.sender.empty() || options.sender.find('\n') != std::string::npos) {
    return Status::InvalidArgument("a channel's sender is a non-empty line");
  }
  if (!receive) return Status::InvalidArgument("a channel needs a receiver");
  pg::TargetOptions target_options;
  target_options.tls = options.tls;
  target_options.connect_timeout_seconds = options.connect_timeout_seconds;
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, target_options));
  auto impl = std::make_unique<Impl>(std::move(target), std::move(options), std::move(receive));
  AIRLOCK_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<PostgresChannel>(new PostgresChannel(std::move(impl)));
}

PostgresChannel::PostgresChannel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresChannel::~PostgresChannel() = default;

bool PostgresChannel::Send(std::string payload) {
  return impl_->Send(std::move(payload));
}
uint64_t PostgresChannel::sent() const {
  return impl_->sent();
}
uint64_t PostgresChannel::dropped() const {
  return impl_->dropped();
}

}  // namespace airlock
