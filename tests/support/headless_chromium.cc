#include "tests/support/headless_chromium.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include "airlock/cpp/base64url.hpp"

extern char** environ;

namespace airlock::testing {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = boost::beast::websocket;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kCallTimeout = std::chrono::seconds(20);

bool Exited(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

}  // namespace

struct HeadlessChromium::Connection {
  net::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  int next_id = 1;

  bool Open(uint16_t port, const std::string& path, std::string* error) {
    beast::error_code ec;
    beast::get_lowest_layer(ws).socket().connect(
        net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) ws.handshake("127.0.0.1:" + std::to_string(port), path, ec);
    if (ec) {
      *error = "DevTools connection to " + path + ": " + ec.message();
      return false;
    }
    ws.read_message_max(64 << 20);
    return true;
  }

  // Sends one command and waits for its reply, skipping events.
  json Call(const std::string& method, const json& params, std::string* error) {
    const int id = next_id++;
    beast::error_code ec;
    ws.write(net::buffer(json{{"id", id}, {"method", method}, {"params", params}}.dump()), ec);
    if (ec) {
      *error = method + ": " + ec.message();
      return json(json::value_t::discarded);
    }
    const auto deadline = Clock::now() + kCallTimeout;
    for (;;) {
      beast::flat_buffer buffer;
      bool done = false;
      beast::error_code read_ec;
      ws.async_read(buffer, [&](beast::error_code e, size_t) {
        done = true;
        read_ec = e;
      });
      io.restart();
      io.run_until(deadline);
      if (!done) {
        beast::get_lowest_layer(ws).cancel();
        io.restart();
        io.run();
        *error = method + ": no reply within " +
                 std::to_string(std::chrono::seconds(kCallTimeout).count()) + " s";
        return json(json::value_t::discarded);
      }
      if (read_ec) {
        *error = method + ": " + read_ec.message();
        return json(json::value_t::discarded);
      }
      json reply = json::parse(beast::buffers_to_string(buffer.data()), nullptr, false);
      if (reply.is_discarded() || !reply.contains("id") || reply["id"] != id) continue;
      if (reply.contains("error")) {
        *error = method + ": " + reply["error"].dump();
        return json(json::value_t::discarded);
      }
      return reply.value("result", json::object());
    }
  }
};

std::string HeadlessChromium::FindBinary() {
  const char* const candidates[] = {std::getenv("AIRLOCK_CHROMIUM"), "/usr/bin/chromium"};
  for (const char* candidate : candidates) {
    if (candidate != nullptr && *candidate != '\0' && ::access(candidate, X_OK) == 0) {
      return candidate;
    }
  }
  return {};
}

std::unique_ptr<HeadlessChromium> HeadlessChromium::Launch(const std::string& binary,
                                                           const std::string& profile_dir,
                                                           std::string* error) {
  std::unique_ptr<HeadlessChromium> browser(new HeadlessChromium());
  browser->profile_dir_ = profile_dir;
  const std::string data_dir = profile_dir + "/data";
  std::filesystem::create_directories(data_dir);
  const std::string log_file = profile_dir + "/chromium.log";

  std::vector<std::string> args = {binary,
                                   "--headless=new",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--disable-dev-shm-usage",
                                   "--no-first-run",
                                   "--no-default-browser-check",
                                   "--disable-extensions",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-sync",
                                   "--mute-audio",
                                   "--ignore-certificate-errors",
                                   "--user-data-dir=" + data_dir,
                                   "--remote-debugging-address=127.0.0.1",
                                   "--remote-debugging-port=0",
                                   "about:blank"};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);  // its own group, so leftovers can be reaped
  const int rc =
      posix_spawn(&browser->pid_, binary.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    browser->pid_ = -1;
    *error = "cannot start " + binary + ": " + std::strerror(rc);
    return nullptr;
  }

  // The browser writes its DevTools port and path once it listens.
  const std::string port_file = data_dir + "/DevToolsActivePort";
  const auto give_up = Clock::now() + std::chrono::seconds(30);
  uint16_t port = 0;
  std::string path;
  while (Clock::now() < give_up) {
    std::ifstream in(port_file);
    std::string port_line;
    if (in && std::getline(in, port_line) && std::getline(in, path) && !path.empty()) {
      port = static_cast<uint16_t>(std::stoi(port_line));
      break;
    }
    if (Exited(browser->pid_)) {
      browser->pid_ = -1;
      *error = "chromium exited at start:\n" + browser->Log();
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  if (port == 0) {
    *error = "chromium did not open its DevTools port within 30 s:\n" + browser->Log();
    return nullptr;
  }
  browser->browser_ = std::make_unique<Connection>();
  if (!browser->browser_->Open(port, path, error)) return nullptr;
  return browser;
}

HeadlessChromium::~HeadlessChromium() {
  if (browser_ != nullptr) {
    std::string ignored;
    browser_->Call("Browser.close", json::object(), &ignored);
  }
  page_ = nullptr;
  pages_.clear();
  browser_.reset();
  if (pid_ <= 0) return;
  const auto give_up = Clock::now() + std::chrono::seconds(5);
  bool exited = false;
  while (!(exited = Exited(pid_)) && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!exited) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ::killpg(pid_, SIGKILL);  // helper processes of this browser still around, if any
}

bool HeadlessChromium::OpenPage(const std::string& url, std::string* error, size_t* index) {
  const json target = browser_->Call("Target.createTarget", {{"url", url}}, error);
  if (target.is_discarded()) return false;
  const std::string id = target.value("targetId", "");
  auto page = std::make_unique<Connection>();
  const std::string port =
      std::to_string(beast::get_lowest_layer(browser_->ws).socket().remote_endpoint().port());
  if (!page->Open(static_cast<uint16_t>(std::stoi(port)), "/devtools/page/" + id, error)) {
    return false;
  }
  // Events of the page (and so its clipboard and focus) as a visible tab's.
  page->Call("Emulation.setFocusEmulationEnabled", {{"enabled", true}}, error);
  page_ = page.get();
  pages_.push_back(std::move(page));
  if (index != nullptr) *index = pages_.size() - 1;
  return true;
}

void HeadlessChromium::UsePage(size_t index) {
  page_ = pages_.at(index).get();
}

bool HeadlessChromium::GrantClipboard(const std::string& origin, std::string* error) {
  return !browser_
              ->Call("Browser.grantPermissions",
                     {{"origin", origin},
                      {"permissions", {"clipboardReadWrite", "clipboardSanitizedWrite"}}},
                     error)
              .is_discarded();
}

bool HeadlessChromium::Screenshot(const std::string& png_path, int width, int height,
                                  std::string* error) {
  if (page_
          ->Call(
              "Emulation.setDeviceMetricsOverride",
              {{"width", width}, {"height", height}, {"deviceScaleFactor", 1}, {"mobile", false}},
              error)
          .is_discarded()) {
    return false;
  }
  const json shot = page_->Call(
      "Page.captureScreenshot",
      {{"format", "png"},
       {"clip", {{"x", 0}, {"y", 0}, {"width", width}, {"height", height}, {"scale", 1}}}},
      error);
  if (shot.is_discarded()) return false;
  const std::string base64 = shot.value("data", "");
  const std::optional<std::string> decoded = sdk::Base64Decode(base64);
  if (!decoded) {
    *error = "the screenshot is not base64";
    return false;
  }
  const std::string& png = *decoded;
  std::ofstream out(png_path, std::ios::binary | std::ios::trunc);
  out << png;
  if (!out) {
    *error = "cannot write " + png_path;
    return false;
  }
  return true;
}

json HeadlessChromium::Evaluate(const std::string& expression, std::string* error) {
  const json result = page_->Call("Runtime.evaluate",
                                  // As if the user acted: what a page allows only then (the
                                  // clipboard) works as it would for a click.
                                  {{"expression", expression},
                                   {"returnByValue", true},
                                   {"awaitPromise", true},
                                   {"userGesture", true}},
                                  error);
  if (result.is_discarded()) return result;
  if (result.contains("exceptionDetails")) {
    *error = "evaluating `" + expression + "` threw: " + result["exceptionDetails"].dump();
    return json(json::value_t::discarded);
  }
  return result.value("result", json::object()).value("value", json());
}

bool HeadlessChromium::Type(const std::string& text, std::string* error) {
  return !page_->Call("Input.insertText", {{"text", text}}, error).is_discarded();
}

bool HeadlessChromium::WaitFor(const std::string& expression, std::chrono::milliseconds timeout) {
  const auto give_up = Clock::now() + timeout;
  do {
    std::string error;
    if (Evaluate(expression, &error) == json(true)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  } while (Clock::now() < give_up);
  return false;
}

std::string HeadlessChromium::Log() const {
  std::ifstream in(profile_dir_ + "/chromium.log");
  std::stringstream text;
  text << in.rdbuf();
  std::string all = text.str();
  return all.size() > 4000 ? all.substr(all.size() - 4000) : all;
}

}  // namespace airlock::testing
