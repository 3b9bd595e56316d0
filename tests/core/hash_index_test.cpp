// HashIndex, the persistent hash trie of value -> ids, against a std::map model: random
// inserts and erases over few values (many ids each) and many values (splits), and older
// versions left intact by newer writes.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
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

TEST_CASE("hash-index: a value's ids move inline and back across the spill bound", "[hash-index]") {
  // Up to kInlineIds ids live in the entry; the next one moves them all to a tree, and
  // erasing back down to kInlineIds moves them inline again. Every step is checked against
  // a set, in both directions and for an older version kept across each change.
  constexpr std::uint32_t k = detail::kInlineIds;
  for (std::uint64_t values : {1ull, 40ull}) {
    HashIndex h(8);
    std::map<std::uint64_t, std::set<std::uint64_t>> m;
    std::uint64_t owner = 1;
    auto val = [](std::uint64_t v) {
      std::string s(8, '\0');
      for (int j = 0; j < 8; ++j) s[static_cast<std::size_t>(j)] = static_cast<char>(v >> (8 * j));
      return s;
    };
    auto check = [&](const HashIndex& x,
                     const std::map<std::uint64_t, std::set<std::uint64_t>>& mm) {
      for (std::uint64_t v = 0; v < values; ++v) {
        std::vector<std::uint64_t> want;
        if (auto it = mm.find(v); it != mm.end()) want.assign(it->second.begin(), it->second.end());
        const std::string s = val(v);
        REQUIRE(x.find(b(s)).ids() == want);
        REQUIRE(x.find(b(s)).size() == want.size());
        for (std::uint64_t id = 1; id <= 3 * k; ++id)
          REQUIRE(x.contains(b(s), id) == std::count(want.begin(), want.end(), id) > 0);
      }
    };
    // Ids in a scrambled order, so an inline insert lands anywhere among the others.
    std::vector<std::uint64_t> order;
    for (std::uint64_t id = 1; id <= 3 * k; ++id) order.push_back((id * 7) % (3 * k) + 1);
    // Every id in, then every id out, one write (and one owner) at a time.
    for (const bool adding : {true, false}) {
      for (std::uint64_t id : order) {
        for (std::uint64_t v = 0; v < values; ++v) {
          const HashIndex before = h;
          const auto mbefore = m;
          ++owner;
          if (adding) {
            REQUIRE(h.insert(b(val(v)), id, owner));
            REQUIRE_FALSE(h.insert(b(val(v)), id, owner));
            m[v].insert(id);
          } else {
            REQUIRE(h.erase(b(val(v)), id, owner));
            REQUIRE_FALSE(h.erase(b(val(v)), id, owner));
            m[v].erase(id);
            if (m[v].empty()) m.erase(v);
          }
          check(before, mbefore);
        }
        check(h, m);
      }
    }
    CHECK(h.size() == 0);
    // Record ids are never 0 nor the largest u64 (the entry uses both as markers).
    CHECK_THROWS_AS(h.insert(b(val(0)), 0, owner), std::invalid_argument);
    CHECK_THROWS_AS(h.insert(b(val(0)), ~std::uint64_t{0}, owner), std::invalid_argument);
    CHECK(h.size() == 0);
  }
}

TEST_CASE("hash-index: a value held by a few records costs about an entry and not a node",
          "[hash-index]") {
  // 25,000 values of 4 ids each (as `owner = i % 25000` over 100,000 records) stay inline:
  // about 20 bytes per id. Values of 10 ids each go to small trees (a first leaf of 8 keys
  // that grows), not to full 1 KiB leaves: about 30. A value of one id costs its 32-byte
  // entry and 16 bytes of hash and value in a leaf, whose header it shares with few others at
  // this size (100,000 values fill the trie's fourth level 1.5 per leaf): about 75.
  for (std::uint64_t per : {1ull, 4ull, 10ull}) {
    HashIndex h(8);
    const std::uint64_t values = 100000 / per;
    for (std::uint64_t i = 0; i < 100000; ++i) {
      std::string s(8, '\0');
      const std::uint64_t v = i % values;
      std::memcpy(s.data(), &v, 8);
      REQUIRE(h.insert(b(s), i + 1, 1));
    }
    REQUIRE(h.size() == 100000);
    const double per_id = static_cast<double>(h.bytes()) / 100000.0;
    INFO("ids per value " << per << ": " << per_id << " bytes per id");
    CHECK(per_id < (per == 1 ? 90.0 : per == 4 ? 30.0 : 45.0));
  }
}
