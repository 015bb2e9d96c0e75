// What a site may push into the kernel's catalog: metadata only, bounded,
// never a configured dataset's name or another site's, and how asks are
// bound to the site that owns their datasets.
#include "kernel/core/site_catalog.h"

#include <vector>

#include <gtest/gtest.h>

namespace airlock {
namespace {

using nlohmann::json;

json Doc(std::vector<json> datasets) {
  return {{"type", "catalog"}, {"datasets", std::move(datasets)}};
}

json Orders() {
  return {
      {"name", "orders"},
      {"description", "Orders at the edge"},
      {"tags", {"finance"}},
      {"columns", {{{"name", "id"}, {"type", "int64"}}, {{"name", "amount"}, {"type", "float64"}}}},
      {"rows", 42},
      {"synced_at_us", 100}};
}

TEST(SiteCatalog, KeepsEachSitesMetadataAndSaysWhenItChanged) {
  SiteCatalog sites({"customers"});
  auto first = sites.Replace("east", Doc({Orders()}), 1000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->datasets, 1u);
  EXPECT_TRUE(first->changed);
  auto same = sites.Replace("east", Doc({Orders()}), 2000);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed) << "a sync that changes nothing is not a change";
  auto owned = sites.Find("orders");
  ASSERT_TRUE(owned.has_value());
  EXPECT_EQ(owned->agent, "east");
  EXPECT_EQ(owned->received_at_us, 2000) << "freshness follows every sync";
  EXPECT_EQ(owned->info.columns.size(), 2u);
  EXPECT_EQ(owned->info.rows, 42) << "a count crosses; values never do";
  const json entry = owned->ToCatalogJson();
  EXPECT_EQ(entry["site"].value("agent", ""), "east");
  EXPECT_EQ(entry["site"].value("sync", ""), "ok");
  EXPECT_FALSE(entry.contains("connector"));
  EXPECT_FALSE(entry.contains("object"));

  json failing = Orders();
  failing["error"] = "the site could not describe it";
  auto failed = sites.Replace("east", Doc({failing}), 3000);
  ASSERT_TRUE(failed.ok());
  EXPECT_TRUE(failed->changed);
  EXPECT_EQ(sites.Find("orders")->ToCatalogJson()["site"].value("sync", ""), "error");
  // A key the site declares crosses as column names, and is a change.
  json keyed = Orders();
  keyed["key"] = {"id"};
  auto with_key = sites.Replace("east", Doc({keyed}), 3500);
  ASSERT_TRUE(with_key.ok()) << with_key.status().ToString();
  EXPECT_TRUE(with_key->changed);
  EXPECT_EQ(sites.Find("orders")->ToCatalogJson()["key"], json::array({"id"}));
  EXPECT_FALSE(failing.contains("key") || owned->ToCatalogJson().contains("key"))
      << "no key is shown where none was declared";
  // A sync in which only the key differs is a change too.
  keyed["key"] = {"amount", "id"};
  auto rekeyed = sites.Replace("east", Doc({keyed}), 3600);
  ASSERT_TRUE(rekeyed.ok()) << rekeyed.status().ToString();
  EXPECT_TRUE(rekeyed->changed);
  EXPECT_EQ(sites.Find("orders")->ToCatalogJson()["key"], json::array({"amount", "id"}));
  // A site that drops a dataset no longer owns it.
  ASSERT_TRUE(sites.Replace("east", Doc({}), 4000).ok());
  EXPECT_FALSE(sites.Find("orders").has_value());
}

TEST(SiteCatalog, RefusesAnythingButBoundedMetadata) {
  SiteCatalog sites({"customers"});
  {
    auto r = sites.Replace("east", Doc({Orders()}), 1);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto with = [](const std::string& key, json value) {
    json d = Orders();
    d["name"] = "other";
    d[key] = std::move(value);
    return d;
  };
  const std::vector<std::pair<json, std::string>> refused = {
      {json::array(), "catalog.datasets must be an array"},
      {Doc({with("rows", json::array({json::array({1, 2})}))}),
       "rows must be a non-negative integer"},
      {Doc({with("rows", -1)}), "rows must be a non-negative integer"},
      {Doc({with("sample", "1,Ada")}), "unknown key 'sample'"},
      {Doc({with("columns", {{{"name", "id"}, {"type", "int64"}, {"values", {1, 2}}}})}),
       "each is {\"name\",\"type\"}"},
      {Doc({with("name", "drop table")}), "must be an identifier"},
      {Doc({with("key", json::array())}), "catalog.datasets[0].key must be an array of 1 to 32"},
      {Doc({with("key", {"id", "id"})}), "catalog.datasets[0].key names 'id' twice"},
      {Doc({with("description", std::string(kMaxSiteTextBytes + 1, 'x'))}), "at most 4096 bytes"},
      {Doc({with("name", "customers")}), "declared in the kernel's configuration"},
      {Doc({Orders(), Orders()}), "listed twice"},
  };
  for (const auto& [doc, message] : refused) {
    auto replaced = sites.Replace("west", doc.is_array() ? json{{"datasets", 1}} : doc, 2);
    ASSERT_FALSE(replaced.ok()) << doc.dump();
    EXPECT_NE(replaced.status().message().find(message), std::string::npos)
        << replaced.status().message();
  }
  // Another site's dataset stays its own, and nothing changed for west.
  auto taken = sites.Replace("west", Doc({Orders()}), 3);
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.status().message().find("owned by site 'east'"), std::string::npos);
  EXPECT_EQ(sites.All().size(), 1u);
  EXPECT_EQ(sites.Find("orders")->agent, "east");
}

TEST(SiteCatalog, AsksAreBoundToTheSiteThatOwnsTheirDatasets) {
  KernelConfig config;
  config.datasets.push_back(DatasetInfo{.name = "customers", .connector = "files"});
  config.connectors["files"] = PluginRef{};
  SiteCatalog sites({"customers"});
  {
    auto r = sites.Replace("east", Doc({Orders()}), 1);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  json other = Orders();
  other["name"] = "stock";
  ASSERT_TRUE(sites.Replace("west", Doc({other}), 1).ok());

  EXPECT_EQ(*AgentForDatasets(config, &sites, {"orders"}), "east");
  EXPECT_EQ(*AgentForDatasets(config, &sites, {"customers"}), "");
  EXPECT_EQ(*AgentForDatasets(config, nullptr, {"orders"}), "") << "no sites: unbound";
  auto kernel_and_site = AgentForDatasets(config, &sites, {"customers", "orders"});
  ASSERT_FALSE(kernel_and_site.ok());
  EXPECT_EQ(kernel_and_site.status().code(), StatusCode::kInvalidArgument);
  auto two_sites = AgentForDatasets(config, &sites, {"orders", "stock"});
  ASSERT_FALSE(two_sites.ok());
  EXPECT_NE(two_sites.status().message().find("agent 'east' and agent 'west'"), std::string::npos)
      << two_sites.status().message();
}

}  // namespace
}  // namespace airlock
