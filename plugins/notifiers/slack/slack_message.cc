#include "slack/slack_message.h"

#include "common/text_util.h"

namespace airlock::notifiers::slack {
namespace {

// Slack's limits: header text 150 characters, section text 3000, button
// label 75 (all counted in characters; bytes keep us below them).
constexpr size_t kHeaderBytes = 150;
constexpr size_t kSectionBytes = 2900;
constexpr size_t kButtonBytes = 75;

Json Mrkdwn(std::string text) {
  return {{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", std::move(text)}}}};
}

}  // namespace

std::string EscapeMrkdwn(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

Json SlackMessage(const NotificationText& text) {
  Json blocks = Json::array();
  blocks.push_back({{"type", "header"},
                    {"text",
                     {{"type", "plain_text"},
                      {"text", std::string(TruncateUtf8(text.title, kHeaderBytes))},
                      {"emoji", false}}}});
  blocks.push_back(Mrkdwn(std::string(TruncateUtf8(EscapeMrkdwn(text.headline), kSectionBytes))));
  std::string facts;
  for (const Fact& fact : text.facts) {
    std::string line = "*" + EscapeMrkdwn(fact.label) + ":* " + EscapeMrkdwn(fact.value) + "\n";
    if (facts.size() + line.size() > kSectionBytes) break;
    facts += line;
  }
  if (!facts.empty()) {
    facts.pop_back();
    blocks.push_back(Mrkdwn(std::move(facts)));
  }
  std::string fallback = EscapeMrkdwn(text.headline);
  if (!text.link_url.empty()) {
    blocks.push_back(
        {{"type", "actions"},
         {"elements",
          Json::array({{{"type", "button"},
                        {"text",
                         {{"type", "plain_text"},
                          {"text", std::string(TruncateUtf8(text.link_label, kButtonBytes))}}},
                        {"url", text.link_url},
                        {"style", "primary"}}})}});
    fallback += " <" + EscapeMrkdwn(text.link_url) + "|" + EscapeMrkdwn(text.link_label) + ">";
  }
  return {{"text", std::move(fallback)}, {"blocks", std::move(blocks)}};
}

}  // namespace airlock::notifiers::slack
