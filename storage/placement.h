// Where the bytes of a model file live. A model is named by a *locator*: a plain file path, or a
// placement manifest (`strata place` writes one) that spreads one or more logical files over
// several drives. Readers resolve a locator to a Placement and never care which it was.
//
// Manifest (JSON, documented in storage/README.md):
//   {"format": "strata-placement", "version": 1,
//    "files": [{"name": "m.gguf", "size": N, "stripe_bytes": 1048576,
//               "parts": ["/d0/m.gguf.stripe-1-of-2", "/d1/m.gguf.stripe-2-of-2"]}]}
// With stripe_bytes S > 0 the file is RAID-0 striped: stripe k (bytes [kS, (k+1)S)) lives in
// part k mod P at offset (k / P) * S. With S = 0 the file is one whole part (split GGUF parts
// placed on different drives). Relative part paths are relative to the manifest's folder.
// A manifest with several files holds a split model; its locators are "MANIFEST#i" for i > 0
// ("MANIFEST" alone is file 0).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "storage/file.h"

namespace strata::storage {

struct ManifestFile {
  std::string name;           // the logical file's name (the GGUF it was made from)
  uint64_t size = 0;          // logical size in bytes
  uint64_t stripe_bytes = 0;  // 0: one whole part
  std::vector<std::string> parts;  // as written in the manifest
};

struct Manifest {
  std::vector<ManifestFile> files;

  // Reads and checks a manifest; strata::Error naming the file and the field on anything wrong.
  static Manifest read(const std::string& path);
  // Writes atomically (temporary file + rename).
  void write(const std::string& path) const;
};

// True when the file at `path` is a placement manifest (it starts with '{', not GGUF's magic).
bool is_manifest(const std::string& path);

// The locators of a model path: the path itself for a plain file, one per logical file for a
// manifest.
std::vector<std::string> model_locators(const std::string& path);

// Bytes of a `size`-byte file that part `part` of `parts` holds when striped in `stripe`-byte
// stripes (stripe k in part k mod parts).
uint64_t stripe_share(uint64_t size, uint64_t stripe, uint64_t parts, uint64_t part);

// A piece of a logical range as it lies in one part.
struct Piece {
  uint32_t part = 0;
  uint64_t part_offset = 0;
  uint64_t length = 0;
  uint64_t logical_offset = 0;
};

class Placement {
 public:
  // Resolves a locator (plain path, MANIFEST or MANIFEST#i) and opens every part for plain
  // reads. A part shorter than its share of the logical size is an error naming it.
  static Placement open(const std::string& locator);

  const std::string& locator() const { return locator_; }
  uint64_t size() const { return size_; }
  uint64_t stripe_bytes() const { return stripe_; }
  const std::vector<std::string>& parts() const { return parts_; }
  bool striped() const { return stripe_ > 0 && parts_.size() > 1; }

  // Splits [offset, offset + length) at stripe boundaries, in logical order.
  std::vector<Piece> map(uint64_t offset, uint64_t length) const;
  // Bytes of the logical file that part `p` holds.
  uint64_t part_share(uint32_t p) const;

  // Exact plain reads across parts (GGUF headers, small files); strata::Error naming the
  // locator on a short read.
  void read_exact(void* dst, size_t n, uint64_t offset) const;

 private:
  std::string locator_;
  uint64_t size_ = 0;
  uint64_t stripe_ = 0;
  std::vector<std::string> parts_;  // resolved paths
  std::vector<File> files_;
};

}  // namespace strata::storage
