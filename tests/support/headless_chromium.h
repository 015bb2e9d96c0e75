// Drives a real headless Chromium through the DevTools protocol (a WebSocket
// on 127.0.0.1), to test pages the way a user's browser runs them.
//
// The browser runs in its own process group with a throw-away profile, with
// --ignore-certificate-errors (the test servers use a private CA) and
// --no-sandbox (CI containers run as root).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock::testing {

class HeadlessChromium {
 public:
  // $AIRLOCK_CHROMIUM, else /usr/bin/chromium if executable; empty when none.
  static std::string FindBinary();

  // Starts the browser with a fresh profile under `profile_dir` and connects
  // to it. Null, with *error set, on failure.
  static std::unique_ptr<HeadlessChromium> Launch(const std::string& binary,
                                                  const std::string& profile_dir,
                                                  std::string* error);
  // Closes the browser (Browser.close, then SIGKILL to its process group if
  // it has not exited within a few seconds) and reaps it.
  ~HeadlessChromium();
  HeadlessChromium(const HeadlessChromium&) = delete;
  HeadlessChromium& operator=(const HeadlessChromium&) = delete;

  // Opens a new tab at `url` and attaches to it; later calls act on it.
  // Returns through *index (when given) the tab's number for UsePage.
  bool OpenPage(const std::string& url, std::string* error, size_t* index = nullptr);
  // Makes tab `index` (from OpenPage) the one later calls act on.
  void UsePage(size_t index);

  // Lets pages of `origin` ("https://127.0.0.1:8443") read and write the
  // clipboard, as a user who allowed it would.
  bool GrantClipboard(const std::string& origin, std::string* error);

  // Writes what the current tab shows to `png_path` (width x height CSS
  // pixels, the whole page when taller is cut).
  bool Screenshot(const std::string& png_path, int width, int height, std::string* error);

  // Runtime.evaluate in the page (awaiting promises); the value, or a
  // discarded json with *error set when the expression threw.
  nlohmann::json Evaluate(const std::string& expression, std::string* error);

  // Types `text` into the focused element (Input.insertText), as a user would.
  bool Type(const std::string& text, std::string* error);

  // Evaluates `expression` until it yields true (every 25 ms) or `timeout`.
  bool WaitFor(const std::string& expression, std::chrono::milliseconds timeout);

  // The browser's stderr so far, for failure messages.
  std::string Log() const;

 private:
  struct Connection;
  HeadlessChromium() = default;

  pid_t pid_ = -1;
  std::string profile_dir_;
  std::unique_ptr<Connection> browser_;
  std::vector<std::unique_ptr<Connection>> pages_;
  Connection* page_ = nullptr;
};

}  // namespace airlock::testing
