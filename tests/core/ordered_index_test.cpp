// OrderedIndex, the persistent B+tree of byte keys, against a std::set model: random
// inserts and erases, cursors forward and backward, prefix bounds, and older versions left
// intact by newer writes (path copying under owner ids).
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/ordered_index.h"

using namespace tickdb;

namespace {

std::string key_of(std::uint64_t v, std::uint32_t ks) {
  std::string k(ks, '\0');
  for (std::uint32_t i = 0; i < ks && i < 8; ++i)
    k[i] = static_cast<char>((v >> (8 * (std::min<std::uint32_t>(ks, 8) - 1 - i))) & 0xff);
  for (std::uint32_t i = 8; i < ks; ++i) k[i] = static_cast<char>((v * 31 + i) & 0xff);
  return k;
}
const std::byte* b(const std::string& s) {
  return reinterpret_cast<const std::byte*>(s.data());
}
std::string str(const std::byte* p, std::size_t n) {
  return std::string(reinterpret_cast<const char*>(p), n);
}

// Every key of the tree in order, forward and backward, equals the model's.
void check_same(const OrderedIndex& t, const std::set<std::string>& model) {
  REQUIRE(t.size() == model.size());
  std::vector<std::string> fwd, bwd;
  for (auto c = t.begin(); c.valid(); c.next()) fwd.push_back(str(c.key(), t.key_size()));
  auto c = t.end();
  for (c.prev(); c.valid(); c.prev()) bwd.push_back(str(c.key(), t.key_size()));
  std::vector<std::string> want(model.begin(), model.end());
  REQUIRE(fwd == want);
  std::reverse(bwd.begin(), bwd.end());
  REQUIRE(bwd == want);
}

}  // namespace

TEST_CASE("ordered-index: random inserts and erases match a std::set, old versions stay intact",
          "[ordered-index]") {
  for (std::uint32_t ks : {8u, 13u, 200u}) {
    std::mt19937_64 rng(ks);
    OrderedIndex t(ks);
    std::set<std::string> model;
    std::vector<std::pair<OrderedIndex, std::set<std::string>>> old;
    std::uint64_t owner = 1;
    for (int round = 0; round < 40; ++round) {
      ++owner;  // a new writer: the nodes of the versions kept in `old` are not its own
      const int ops = 1 + static_cast<int>(rng() % 400);
      for (int i = 0; i < ops; ++i) {
        std::string k = key_of(rng() % 3000, ks);
        if (rng() % 3 == 0) {
          CHECK(t.erase(b(k), owner) == (model.erase(k) == 1));
        } else {
          CHECK(t.insert(b(k), owner) == model.insert(k).second);
        }
      }
      check_same(t, model);
      old.emplace_back(t, model);
    }
    for (const auto& [ot, om] : old) check_same(ot, om);
    // Erase everything: empty again, old versions still whole.
    ++owner;
    for (const auto& k : std::set<std::string>(model)) REQUIRE(t.erase(b(k), owner));
    CHECK(t.size() == 0);
    CHECK(!t.begin().valid());
    for (const auto& [ot, om] : old) check_same(ot, om);
  }
}

TEST_CASE("ordered-index: lower_bound and upper_bound with full keys and prefixes",
          "[ordered-index]") {
  std::mt19937_64 rng(7);
  const std::uint32_t ks = 12;
  OrderedIndex t(ks);
  std::set<std::string> model;
  for (int i = 0; i < 20000; ++i) {
    std::string k = key_of(rng() % 5000, ks);
    k[4] = static_cast<char>(rng() % 4);  // shared 4..5-byte prefixes
    t.insert(b(k), 1);
    model.insert(k);
  }
  check_same(t, model);
  for (int i = 0; i < 2000; ++i) {
    std::string probe = key_of(rng() % 5100, ks).substr(0, 1 + rng() % ks);
    auto lo = t.lower_bound({b(probe), probe.size()});
    auto hi = t.upper_bound({b(probe), probe.size()});
    auto mlo = std::find_if(model.begin(), model.end(), [&](const std::string& k) {
      return k.substr(0, probe.size()) >= probe;
    });
    auto mhi = std::find_if(model.begin(), model.end(), [&](const std::string& k) {
      return k.substr(0, probe.size()) > probe;
    });
    REQUIRE(lo.valid() == (mlo != model.end()));
    if (lo.valid()) REQUIRE(str(lo.key(), ks) == *mlo);
    REQUIRE(hi.valid() == (mhi != model.end()));
    if (hi.valid()) REQUIRE(str(hi.key(), ks) == *mhi);
    CHECK(t.count_range({b(probe), probe.size()}, {}) ==
          static_cast<std::size_t>(std::distance(mlo, model.end())));
    // Backward from the upper bound: the last key of the prefix range.
    auto back = hi;
    back.prev();
    if (mhi == model.begin())
      CHECK(!back.valid());
    else
      REQUIRE(str(back.key(), ks) == *std::prev(mhi));
  }
}

TEST_CASE("ordered-index: build from sorted keys equals inserting them, and stays writable",
          "[ordered-index]") {
  const std::uint32_t ks = 8;
  for (std::size_t n : {0u, 1u, 7u, 100u, 5000u, 100000u}) {
    std::string flat;
    std::set<std::string> model;
    for (std::size_t i = 0; i < n; ++i) {
      flat += key_of(i * 2, ks);
      model.insert(key_of(i * 2, ks));
    }
    OrderedIndex t = OrderedIndex::build(ks, b(flat), n, 1);
    check_same(t, model);
    OrderedIndex before = t;
    std::mt19937_64 rng(n);
    for (int i = 0; i < 3000; ++i) {
      std::string k = key_of(rng() % (2 * n + 10), ks);
      if (rng() % 2)
        CHECK(t.insert(b(k), 2) == model.insert(k).second);
      else
        CHECK(t.erase(b(k), 2) == (model.erase(k) == 1));
    }
    check_same(t, model);
    CHECK(before.size() == n);
    std::size_t i = 0;
    for (auto c = before.begin(); c.valid(); c.next(), ++i)
      REQUIRE(str(c.key(), ks) == key_of(i * 2, ks));
    CHECK(i == n);
    if (n) CHECK(t.bytes() > 0);
  }
}

TEST_CASE("ordered-index: a small tree takes a small leaf that grows in place of splitting",
          "[ordered-index]") {
  // The first leaf holds 8 keys and doubles up to a full leaf (1 KiB of keys) before the
  // tree splits; every size on the way reads back whole, and a copy made at each size keeps
  // its keys while the original grows past it.
  const std::uint32_t ks = 8;
  OrderedIndex t(ks);
  std::set<std::string> model;
  std::vector<std::pair<OrderedIndex, std::set<std::string>>> old;
  std::size_t prev_bytes = 0;
  for (std::uint64_t i = 0; i < 300; ++i) {
    const std::string k = key_of((i * 37) % 1000, ks);
    REQUIRE(t.insert(b(k), i + 1));  // a new owner each time: every write copies
    model.insert(k);
    check_same(t, model);
    if (i == 0) CHECK(t.bytes() < 200);  // a first leaf of 8 keys, not 1 KiB
    if (i < 100) CHECK(t.bytes() >= prev_bytes);
    prev_bytes = t.bytes();
    if (i % 7 == 0) old.emplace_back(t, model);
  }
  for (const auto& [ot, om] : old) check_same(ot, om);
  // Built from 3 keys: a leaf of 8, not a full one.
  std::string flat = key_of(1, ks) + key_of(2, ks) + key_of(3, ks);
  OrderedIndex small = OrderedIndex::build(ks, b(flat), 3, 1);
  CHECK(small.bytes() < 200);
  for (std::uint64_t i = 10; i < 40; ++i) REQUIRE(small.insert(b(key_of(i, ks)), 2));
  CHECK(small.size() == 33);
}
