// A bound on the nesting of JSON text, checked before the text is parsed.
// nlohmann's serializer and copy constructor recurse once per level, so a
// document nested deeply enough ("[[[[...") exhausts the stack of whoever
// dumps or copies it; text from outside is refused before that can happen.
#pragma once

#include <string_view>

namespace airlock {

// True when no object or array in `text` nests deeper than `max_depth`
// levels. Strings (with their escapes) are skipped; the text need not be
// valid JSON (the parser judges that). O(n), no allocation.
bool JsonNestingWithin(std::string_view text, int max_depth);

}  // namespace airlock
