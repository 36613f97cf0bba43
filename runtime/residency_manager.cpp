#include "runtime/residency_manager.h"

#include <algorithm>

namespace strata::runtime {

ResidencyManager::ResidencyManager(UnitTable& units, ResidencyParams params, std::function<void(UnitId)> requeue)
    : units_(units), policy_(params, 1), requeue_(std::move(requeue)) {}

void ResidencyManager::allocate_pool(uint64_t bytes, int n_layers) {
  policy_ = ResidencyPolicy(policy_.params(), n_layers);
  pool_ = std::make_unique<PinnedPool>(bytes);
  alloc_ = std::make_unique<RangeAllocator>(pool_->size(), kSlotAlign);
}

void ResidencyManager::tick(int64_t step, int layer) {
  current_layer_ = layer;
  now_ = policy_.clock(step, layer);
}

std::optional<uint64_t> ResidencyManager::make_room(uint64_t bytes, Need need, bool urgent,
                                                    const std::function<double()>& bandwidth) {
  double bw = 0;  // asked for only when something must go
  for (;;) {
    if (auto off = alloc_->allocate(bytes)) return off;
    if (bw == 0) bw = bandwidth();
    UnitRecord* victim[3] = {nullptr, nullptr, nullptr};
    double best[3] = {0, 0, 0};
    for (UnitRecord& u : units_) {
      if (u.state != UnitState::Resident || u.pinned || u.leases > 0 || u.waiters > 0) continue;
      const int tier = !u.wanted ? 0 : u.need != Need::Now ? 1 : 2;
      if (tier >= 1 && need != Need::Now) continue;
      if (tier == 2 && !urgent) continue;
      int d = policy_.distance(u.desc.layer, current_layer_);
      if (d == 0 && (u.usage.last_clock >= now_ || u.desc.kind == UnitKind::Expert)) d = policy_.period();
      const double s = policy_.keep_score(u.usage, u.slot_bytes, d, now_, bw);
      if (!victim[tier] || s < best[tier]) {
        victim[tier] = &u;
        best[tier] = s;
      }
    }
    UnitRecord* v = victim[0] ? victim[0] : victim[1] ? victim[1] : victim[2];
    if (!v) return std::nullopt;
    evict(*v);
  }
}

void ResidencyManager::evict(UnitRecord& u) {
  alloc_->free(u.off, u.slot_bytes);
  resident_ -= u.slot_bytes;
  u.state = u.wanted ? UnitState::Queued : UnitState::Absent;
  u.speculative = false;
  ++evictions_;
  if (u.wanted) requeue_(units_.id_of(u));
}

void ResidencyManager::loaded(UnitRecord& u) {
  u.state = UnitState::Resident;
  resident_ += u.slot_bytes;
  peak_ = std::max(peak_, resident_);
}

void ResidencyManager::load_failed(UnitRecord& u) {
  alloc_->free(u.off, u.slot_bytes);
  u.state = UnitState::Absent;
  u.speculative = false;
}

}  // namespace strata::runtime
