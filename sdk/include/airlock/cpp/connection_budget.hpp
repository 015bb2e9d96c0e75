// A connection budget for a listener that serves clients before they have
// authenticated (an HTTP API, a tunnel). Header-only and free of any I/O: the
// listener asks it whether to take each accepted connection and tells it when
// a connection authenticates, goes busy or idle, and closes.
//
// Why: a listener that only counts connections lets anyone without a
// credential hold every slot with idle sockets, and a reconnecting client
// keeps them held. The budget keeps three pools apart:
//
//   * pre-authentication connections (accepted, no valid credential yet) are
//     bounded overall (max_preauth_connections) and per client address
//     (max_preauth_connections_per_address);
//   * authenticated connections keep the rest of max_connections, which the
//     pre-authentication pool can never take (max_preauth_connections must be
//     smaller), and may be bounded per endpoint (max_connections_per_endpoint:
//     each request-scoped endpoint has its own share);
//   * when a pool is full, a new connection does not wait for a slot: the
//     budget sheds the *oldest idle pre-authentication* connection — from the
//     new connection's own address when that address is over its quota, else
//     from the address holding the most pre-authentication connections — and
//     takes the new one. Holding thousands of idle sockets from a few
//     addresses therefore only recycles the holder's own sockets, and a
//     reconnect storm sheds itself; a client that sends its request promptly
//     is not idle for long enough to be the oldest. A connection is refused
//     only when nothing can be shed (every slot authenticated or busy).
//
// "Idle" means waiting for input; a pre-authentication connection whose
// request is being handled is busy (SetBusy) and is never shed.
//
// Thread-safety: every member may be called from any thread. Shed callbacks
// run on the thread that called Admit(), after the budget's lock is released;
// they must not block (post the close to the connection's own executor, or
// shut its socket down).
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iterator>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::sdk {

struct ConnectionLimits {
  size_t max_connections = 4096;                    // every open connection
  size_t max_preauth_connections = 1024;            // not yet authenticated
  size_t max_preauth_connections_per_address = 64;  // not yet authenticated, one address
  size_t max_connections_per_endpoint = 0;          // authenticated, one endpoint; 0: no share

  // Empty when consistent; else what is wrong, naming the field.
  std::string Check() const {
    if (max_connections == 0 || max_preauth_connections == 0 ||
        max_preauth_connections_per_address == 0) {
      return "max_connections, max_preauth_connections and "
             "max_preauth_connections_per_address must be at least 1";
    }
    if (max_preauth_connections >= max_connections) {
      return "max_preauth_connections must be smaller than max_connections, so that "
             "authenticated clients keep a share no unauthenticated client can take";
    }
    if (max_preauth_connections_per_address > max_preauth_connections) {
      return "max_preauth_connections_per_address must not exceed max_preauth_connections";
    }
    return {};
  }
};

// Reads the budget's keys from a plugin configuration object, each optional
// (absent keys keep *limits): max_connections, max_preauth_connections,
// max_preauth_connections_per_address and, with `per_endpoint`,
// max_connections_per_endpoint; then Check()s them. Errors name
// "<where>.<key>".
inline Status ReadConnectionLimits(const Json& config, std::string_view where, bool per_endpoint,
                                   ConnectionLimits* limits) {
  const auto read = [&](std::string_view key, size_t* out) -> Status {
    int64_t value = static_cast<int64_t>(*out);
    AIRLOCK_RETURN_IF_ERROR(json_read::Int(config, key, &value, false, where));
    constexpr int64_t kMax = 1 << 20;
    if (value < 1 || value > kMax) {
      return json_read::Bad(where, key, "must be between 1 and " + std::to_string(kMax));
    }
    *out = static_cast<size_t>(value);
    return Status::Ok();
  };
  AIRLOCK_RETURN_IF_ERROR(read("max_connections", &limits->max_connections));
  AIRLOCK_RETURN_IF_ERROR(read("max_preauth_connections", &limits->max_preauth_connections));
  AIRLOCK_RETURN_IF_ERROR(
      read("max_preauth_connections_per_address", &limits->max_preauth_connections_per_address));
  if (per_endpoint) {
    AIRLOCK_RETURN_IF_ERROR(
        read("max_connections_per_endpoint", &limits->max_connections_per_endpoint));
  }
  const std::string problem = limits->Check();
  if (!problem.empty()) return Status::InvalidArgument(std::string(where) + ": " + problem);
  return Status::Ok();
}

struct ConnectionBudgetStats {
  size_t open = 0;                // connections holding a ticket
  size_t preauth = 0;             // of which not yet authenticated
  uint64_t shed = 0;              // pre-authentication connections closed to make room
  uint64_t refused = 0;           // connections refused on arrival (nothing to shed)
  uint64_t endpoint_refused = 0;  // authentications refused: the endpoint's share was full
};

// The key a client address is budgeted under: the IPv4 address itself, or
// the /64 prefix of an IPv6 address (one host usually owns a whole /64, so
// per-address quotas on single IPv6 addresses would bound nothing).
// IPv4-mapped IPv6 addresses count as their IPv4 address. Text that is not
// an address is its own key.
inline std::string ClientAddressKey(std::string_view address) {
  std::string text(address);
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (const size_t zone = text.find('%'); zone != std::string::npos) text.resize(zone);
  unsigned char v6[16];
  if (inet_pton(AF_INET6, text.c_str(), v6) != 1) return text;
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char out[INET6_ADDRSTRLEN + 4];
  if (std::equal(std::begin(kMapped), std::end(kMapped), v6)) {
    std::snprintf(out, sizeof out, "%u.%u.%u.%u", v6[12], v6[13], v6[14], v6[15]);
    return out;
  }
  std::snprintf(out, sizeof out, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", v6[0], v6[1], v6[2],
                v6[3], v6[4], v6[5], v6[6], v6[7]);
  return out;
}

class ConnectionBudget {
 public:
  // Closes a shed connection; see the thread-safety note above.
  using ShedCallback = std::function<void()>;

 private:
  struct State;

 public:
  // One admitted connection's place. Move-only; destroying it gives the place
  // back. Owned by the connection.
  class Ticket {
   public:
    Ticket(Ticket&& other) noexcept
        : state_(std::move(other.state_)), id_(std::exchange(other.id_, 0)) {}
    Ticket& operator=(Ticket&& other) noexcept {
      if (this != &other) {
        Release();
        state_ = std::move(other.state_);
        id_ = std::exchange(other.id_, 0);
      }
      return *this;
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { Release(); }

    // The connection presented a valid credential (for `endpoint`, the
    // request-scoped endpoint it is attributed to; empty where there are
    // none): it leaves the pre-authentication pool and is never shed. False,
    // leaving it pre-authentication, when the endpoint's share is full or the
    // connection was already shed. A connection authenticates once; later
    // calls return true and keep the first attribution.
    bool Authenticate(std::string_view endpoint = {}) {
      if (!state_) return false;
      std::lock_guard<std::mutex> lock(state_->mutex);
      return state_->Authenticate(id_, endpoint);
    }

    // While busy (its request is being handled) a pre-authentication
    // connection is not shed; idle again, it is the youngest idle one.
    void SetBusy(bool busy) {
      if (!state_) return;
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->SetBusy(id_, busy);
    }

    bool authenticated() const {
      if (!state_) return false;
      std::lock_guard<std::mutex> lock(state_->mutex);
      auto it = state_->entries.find(id_);
      return it != state_->entries.end() && it->second.authenticated;
    }

   private:
    friend class ConnectionBudget;
    Ticket(std::shared_ptr<State> state, uint64_t id) : state_(std::move(state)), id_(id) {}

    void Release() {
      if (!state_) return;
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        state_->Remove(id_);
      }
      state_.reset();
    }

    std::shared_ptr<State> state_;  // keeps the books alive after the budget
    uint64_t id_ = 0;
  };

  // `limits` must pass Check().
  explicit ConnectionBudget(ConnectionLimits limits)
      : state_(std::make_shared<State>(std::move(limits))) {}

  // Takes a new connection from `address_key` (ClientAddressKey) if there is
  // room, or makes room by shedding (calling `shed` of) older idle
  // pre-authentication connections. nullopt: refused; close it at once.
  std::optional<Ticket> Admit(const std::string& address_key, ShedCallback shed) {
    std::vector<ShedCallback> victims;
    std::optional<Ticket> ticket;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      const uint64_t id = state_->Admit(address_key, std::move(shed), &victims);
      if (id != 0) ticket.emplace(Ticket(state_, id));
    }
    for (auto& victim : victims) {
      if (victim) victim();
    }
    return ticket;
  }

  ConnectionBudgetStats stats() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->stats;
  }

  const ConnectionLimits& limits() const { return state_->limits; }

 private:
  struct Entry {
    std::string address;
    std::string endpoint;
    bool authenticated = false;
    bool busy = false;
    ShedCallback shed;
    std::list<uint64_t>::iterator idle_position;  // valid iff pre-auth and idle
  };
  struct Address {
    size_t preauth = 0;
    std::list<uint64_t> idle;  // pre-auth idle connections, oldest first
  };

  // The books. Every member function expects `mutex` held.
  struct State {
    explicit State(ConnectionLimits l) : limits(std::move(l)) {}

    uint64_t Admit(const std::string& address, ShedCallback shed,
                   std::vector<ShedCallback>* victims) {
      // Over this address's quota: only this address's own idle connections
      // may make room.
      if (PreauthOf(address) >= limits.max_preauth_connections_per_address) {
        if (!ShedOldestIdleOf(address, victims)) return Refuse();
      }
      // A pool full overall: shed from the address holding the most.
      while (stats.preauth >= limits.max_preauth_connections ||
             stats.open >= limits.max_connections) {
        if (!ShedFromLargestHolder(victims)) return Refuse();
      }
      const uint64_t id = ++next_id;
      Entry& entry = entries[id];
      entry.address = address;
      entry.shed = std::move(shed);
      Address& holder = addresses[address];
      Recount(address, holder.preauth, holder.preauth + 1);
      ++holder.preauth;
      entry.idle_position = holder.idle.insert(holder.idle.end(), id);
      ++stats.open;
      ++stats.preauth;
      return id;
    }

    bool Authenticate(uint64_t id, std::string_view endpoint) {
      auto it = entries.find(id);
      if (it == entries.end()) return false;  // shed meanwhile
      Entry& entry = it->second;
      if (entry.authenticated) return true;
      if (!endpoint.empty() && limits.max_connections_per_endpoint != 0) {
        size_t& count = endpoints[std::string(endpoint)];
        if (count >= limits.max_connections_per_endpoint) {
          ++stats.endpoint_refused;
          return false;
        }
        ++count;
        entry.endpoint = std::string(endpoint);
      }
      LeavePreauth(entry);
      entry.authenticated = true;
      entry.shed = nullptr;  // never shed; drop what it captured
      return true;
    }

    void SetBusy(uint64_t id, bool busy) {
      auto it = entries.find(id);
      if (it == entries.end() || it->second.authenticated || it->second.busy == busy) return;
      Entry& entry = it->second;
      Address& holder = addresses[entry.address];
      if (busy) {
        holder.idle.erase(entry.idle_position);
      } else {
        entry.idle_position = holder.idle.insert(holder.idle.end(), id);
      }
      entry.busy = busy;
    }

    // Gives the place back; nothing when it was shed (its place was taken).
    void Remove(uint64_t id) {
      auto it = entries.find(id);
      if (it == entries.end()) return;
      Entry& entry = it->second;
      if (entry.authenticated) {
        if (!entry.endpoint.empty()) {
          auto share = endpoints.find(entry.endpoint);
          if (share != endpoints.end() && --share->second == 0) endpoints.erase(share);
        }
      } else {
        LeavePreauth(entry);
      }
      --stats.open;
      entries.erase(it);
    }

    size_t PreauthOf(const std::string& address) const {
      auto it = addresses.find(address);
      return it == addresses.end() ? 0 : it->second.preauth;
    }

    uint64_t Refuse() {
      ++stats.refused;
      return 0;
    }

    bool ShedOldestIdleOf(const std::string& address, std::vector<ShedCallback>* victims) {
      auto it = addresses.find(address);
      if (it == addresses.end() || it->second.idle.empty()) return false;
      const uint64_t victim = it->second.idle.front();
      auto entry = entries.find(victim);
      victims->push_back(std::move(entry->second.shed));
      LeavePreauth(entry->second);
      --stats.open;
      entries.erase(entry);
      ++stats.shed;
      return true;
    }

    bool ShedFromLargestHolder(std::vector<ShedCallback>* victims) {
      // Largest count first; an address whose connections are all busy is
      // passed over. Bounded by the number of addresses holding any.
      for (auto it = by_preauth.rbegin(); it != by_preauth.rend(); ++it) {
        if (ShedOldestIdleOf(it->second, victims)) return true;
      }
      return false;
    }

    // Takes a pre-auth entry out of its address's books.
    void LeavePreauth(Entry& entry) {
      if (entry.authenticated) return;
      auto it = addresses.find(entry.address);
      Address& holder = it->second;
      if (!entry.busy) holder.idle.erase(entry.idle_position);
      Recount(entry.address, holder.preauth, holder.preauth - 1);
      --holder.preauth;
      --stats.preauth;
      if (holder.preauth == 0) addresses.erase(it);
    }

    void Recount(const std::string& address, size_t from, size_t to) {
      if (from != 0) by_preauth.erase({from, address});
      if (to != 0) by_preauth.insert({to, address});
    }

    const ConnectionLimits limits;
    std::mutex mutex;
    uint64_t next_id = 0;  // 0 is never a ticket
    std::unordered_map<uint64_t, Entry> entries;
    std::unordered_map<std::string, Address> addresses;   // with pre-auth connections
    std::set<std::pair<size_t, std::string>> by_preauth;  // (pre-auth count, address)
    std::unordered_map<std::string, size_t> endpoints;    // authenticated per endpoint
    ConnectionBudgetStats stats;
  };

  std::shared_ptr<State> state_;
};

}  // namespace airlock::sdk
