// A site's "catalog" control document as an agent sends it over its link
// (kernel/core/site_catalog.*): parsed as the kernel parses link documents,
// then checked and taken by SiteCatalog::Replace for one site while another
// site already holds a dataset and the configuration reserves one name.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kernel/core/site_catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return 0;
  airlock::SiteCatalog sites({"customers"});
  const nlohmann::json other = {
      {"datasets", {{{"name", "stock"}, {"columns", {{{"name", "id"}, {"type", "int64"}}}}}}}};
  if (!sites.Replace("west", other, 1).ok()) __builtin_trap();
  auto replaced = sites.Replace("east", doc, 2);
  if (!replaced.ok()) {
    // Refused whole: nothing of east's, west's untouched.
    if (sites.All().size() != 1 || sites.Find("stock")->agent != "west") __builtin_trap();
    return 0;
  }
  // Taken: only metadata, within bounds, never a reserved or another's name.
  for (const airlock::SiteDataset& d : sites.All()) {
    if (d.agent == "west") continue;
    if (d.info.name == "customers" || d.info.name == "stock") __builtin_trap();
    if (d.info.columns.size() > airlock::kMaxSiteColumns) __builtin_trap();
    (void)d.ToCatalogJson().dump();
  }
  return 0;
}
