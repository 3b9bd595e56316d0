// HashIndex, the persistent hash trie of value -> ids, against a std::map model: random
// inserts and erases over few values (many ids each) and many values (splits), and older
// versions left intact by newer writes.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/hash_index.h"

using namespace tickdb;

namespace {
const std::byte* b(const std::string& s) {
  return reinterpret_cast<const std::byte*>(s.data());
}
using Model = std::map<std::string, std::set<std::uint64_t>>;

void check_same(const HashIndex& h, const Model& m, std::size_t vs, std::uint64_t values) {
  std::size_t total = 0;
  for (const auto& [v, ids] : m) total += ids.size();
  REQUIRE(h.size() == total);
  for (std::uint64_t i = 0; i < values; ++i) {
    std::string v(vs, '\0');
    for (std::size_t j = 0; j < vs && j < 8; ++j) v[j] = static_cast<char>(i >> (8 * j));
    auto it = m.find(v);
    auto got = h.find(b(v)).ids();
    std::vector<std::uint64_t> want;
    if (it != m.end()) want.assign(it->second.begin(), it->second.end());
    REQUIRE(got == want);
    CHECK(h.find(b(v)).size() == want.size());
  }
}
}  // namespace

TEST_CASE("hash-index: random inserts and erases match a map of sets, old versions stay intact",
          "[hash-index]") {
  for (std::uint64_t values : {3ull, 500ull, 20000ull}) {
    for (std::size_t vs : {4u, 8u, 20u}) {
      std::mt19937_64 rng(values * 31 + vs);
      HashIndex h(static_cast<std::uint32_t>(vs));
      Model m;
      std::vector<std::pair<HashIndex, Model>> old;
      std::uint64_t owner = 1;
      for (int round = 0; round < 12; ++round) {
        ++owner;
        for (int i = 0; i < 1500; ++i) {
          std::uint64_t vi = rng() % values;
          std::string v(vs, '\0');
          for (std::size_t j = 0; j < vs && j < 8; ++j) v[j] = static_cast<char>(vi >> (8 * j));
          std::uint64_t id = 1 + rng() % 200;
          if (rng() % 3 == 0) {
            bool had = m.count(v) && m[v].erase(id);
            if (m.count(v) && m[v].empty()) m.erase(v);
            REQUIRE(h.erase(b(v), id, owner) == had);
          } else {
            REQUIRE(h.insert(b(v), id, owner) == m[v].insert(id).second);
          }
        }
        check_same(h, m, vs, values);
        old.emplace_back(h, m);
      }
      for (const auto& [oh, om] : old) check_same(oh, om, vs, values);
      ++owner;
      for (const auto& [v, ids] : Model(m))
        for (auto id : ids) REQUIRE(h.erase(b(v), id, owner));
      CHECK(h.size() == 0);
      for (const auto& [oh, om] : old) check_same(oh, om, vs, values);
      CHECK(old.back().first.bytes() > 0);
    }
  }
}

TEST_CASE("hash-index: -0.0 and 0.0 encode alike and so find the same ids", "[hash-index]") {
  // The hash is over encoded values (index_key.h), where -0.0 is 0.0.
  FieldType f{Kind::F64, 8, nullptr};
  double pz = 0.0, nz = -0.0;
  std::byte a[8], c[8];
  encode_part_to(f, reinterpret_cast<const std::byte*>(&pz), a);
  encode_part_to(f, reinterpret_cast<const std::byte*>(&nz), c);
  HashIndex h(8);
  h.insert(a, 7, 1);
  CHECK(h.find(c).ids() == std::vector<std::uint64_t>{7});
}
