#include "runtime/unit_table.h"

#include <algorithm>

#include "storage/error.h"

namespace strata::runtime {

void UnitTable::layout(const std::vector<uint32_t>& file_ids, uint64_t align) {
  align = std::max<uint64_t>(align, 1);
  for (UnitRecord& u : units_) {
    u.reads.clear();
    u.needed.clear();
    u.range_off.clear();
    u.read_bytes = 0;
    uint64_t at = 0;
    for (const FileRange& r : u.desc.ranges) {
      if (r.file >= file_ids.size()) fail("weight unit {}: file index {} out of range", u.desc.name, r.file);
      storage::JobRead s;
      s.file = file_ids[r.file];
      s.offset = r.offset / align * align;
      const uint64_t end = (r.offset + r.length + align - 1) / align * align;
      s.length = end - s.offset;
      s.at = at;
      u.needed.push_back(r.offset + r.length - s.offset);
      u.range_off.push_back(at + (r.offset - s.offset));
      u.reads.push_back(s);
      u.read_bytes += s.length;
      at += s.length;
    }
    u.slot_bytes = std::max<uint64_t>(at, 1);
    u.pinned = u.desc.kind == UnitKind::Pinned;
  }
}

}  // namespace strata::runtime
