#include "core/filter.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "core/table.h"

namespace tickdb {

using json = nlohmann::json;
using Op = FilterExpr::Op;
using FKind = FilterExpr::Kind;

std::string_view filter_op_text(Op op) {
  switch (op) {
    case Op::eq:
      return "=";
    case Op::ne:
      return "!=";
    case Op::lt:
      return "<";
    case Op::le:
      return "<=";
    case Op::gt:
      return ">";
    case Op::ge:
      return ">=";
    case Op::prefix:
      return "^=";
    case Op::contains:
      return "~";
  }
  return "?";
}

namespace {

Error filter_error(const std::string& what, const std::string& where) {
  return make_error(Errc::invalid_argument, "filter: " + what + " at " + where);
}

bool is_name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9');
}

// A path as the grammar has it: name { "." name }.
bool is_path(std::string_view p) {
  if (p.empty()) return false;
  bool start = true;
  for (char c : p) {
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    if (start ? !is_name_start(c) : !is_name_char(c)) return false;
    start = false;
  }
  return !start;
}

std::optional<Op> op_from_text(std::string_view s) {
  for (Op op : {Op::eq, Op::ne, Op::lt, Op::le, Op::gt, Op::ge, Op::prefix, Op::contains})
    if (filter_op_text(op) == s) return op;
  return std::nullopt;
}

bool is_literal(const json& v) {
  return v.is_number() || v.is_string() || v.is_boolean();
}

std::size_t tree_depth(const FilterExpr& f) {
  std::size_t d = 0;
  for (const auto& k : f.kids) d = std::max(d, tree_depth(k));
  return d + 1;
}

std::size_t tree_leaves(const FilterExpr& f) {
  if (f.kind == FKind::compare || f.kind == FKind::in) return 1;
  std::size_t n = 0;
  for (const auto& k : f.kids) n += tree_leaves(k);
  return n;
}

Status check_limits(const FilterExpr& f) {
  if (tree_depth(f) > kFilterMaxDepth)
    return make_error(Errc::invalid_argument,
                      "filter: nesting is deeper than " + std::to_string(kFilterMaxDepth));
  if (tree_leaves(f) > kFilterMaxLeaves)
    return make_error(Errc::invalid_argument,
                      "filter: more than " + std::to_string(kFilterMaxLeaves) + " comparisons");
  return {};
}

// ---- the text form ----

class TextParser {
 public:
  explicit TextParser(std::string_view s) : s_(s) {}

  Result<FilterExpr> parse() {
    ws();
    if (pos_ == s_.size()) return make_error(Errc::invalid_argument, "filter: the filter is empty");
    auto f = parse_or(0);
    if (!f) return f;
    ws();
    if (pos_ != s_.size()) return err("unexpected '" + token_preview() + "'", pos_);
    return f;
  }

 private:
  // Recursion is bounded well before the stack is: parentheses that add no tree level are
  // allowed up to this many, the tree's own depth is checked against the API's limit after.
  static constexpr std::size_t kMaxRecursion = 4 * kFilterMaxDepth;

  // "line:column" of offset p. Every node asks for its own: the newlines are found once, so
  // a long filter costs a search per node, not a scan from its start per node.
  std::string where(std::size_t p) const {
    if (!newlines_found_) {
      for (std::size_t i = 0; i < s_.size(); ++i)
        if (s_[i] == '\n') newlines_.push_back(i);
      newlines_found_ = true;
    }
    p = std::min(p, s_.size());
    const auto after = std::lower_bound(newlines_.begin(), newlines_.end(), p);  // none before p
    const std::size_t line = 1 + static_cast<std::size_t>(after - newlines_.begin());
    const std::size_t col = after == newlines_.begin() ? p + 1 : p - *(after - 1);
    return std::to_string(line) + ":" + std::to_string(col);
  }
  Error err(const std::string& what, std::size_t p) const { return filter_error(what, where(p)); }
  std::string token_preview() const {
    std::string t(s_.substr(pos_, 16));
    for (char& c : t)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return t;
  }
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(std::string_view tok) {
    if (s_.substr(pos_, tok.size()) != tok) return false;
    pos_ += tok.size();
    return true;
  }
  bool at_word(std::string_view w) const {
    if (s_.substr(pos_, w.size()) != w) return false;
    return pos_ + w.size() == s_.size() || !is_name_char(s_[pos_ + w.size()]);
  }

  Result<FilterExpr> parse_or(std::size_t rec) { return parse_list(rec, "||", FKind::any_of); }
  Result<FilterExpr> parse_and(std::size_t rec) { return parse_list(rec, "&&", FKind::all_of); }

  Result<FilterExpr> parse_list(std::size_t rec, std::string_view sep, FKind kind) {
    const std::size_t start = pos_;
    auto first = kind == FKind::any_of ? parse_and(rec) : parse_unary(rec);
    if (!first) return first;
    ws();
    if (s_.substr(pos_, 2) != sep) return first;
    FilterExpr list;
    list.kind = kind;
    list.where = where(start);
    list.kids.push_back(std::move(*first));
    while (true) {
      ws();
      if (!eat(sep)) break;
      ws();
      auto next = kind == FKind::any_of ? parse_and(rec) : parse_unary(rec);
      if (!next) return next;
      list.kids.push_back(std::move(*next));
      if (list.kids.size() > kFilterMaxLeaves)
        return err("more than " + std::to_string(kFilterMaxLeaves) + " comparisons", pos_);
    }
    return list;
  }

  Result<FilterExpr> parse_unary(std::size_t rec) {
    if (rec > kMaxRecursion)
      return err("nesting is deeper than " + std::to_string(kFilterMaxDepth), pos_);
    ws();
    const std::size_t start = pos_;
    if (pos_ == s_.size()) return err("expected a comparison, '!' or '('", pos_);
    if (s_[pos_] == '!') {
      ++pos_;
      auto kid = parse_unary(rec + 1);
      if (!kid) return kid;
      FilterExpr f;
      f.kind = FKind::negate;
      f.where = where(start);
      f.kids.push_back(std::move(*kid));
      return f;
    }
    if (s_[pos_] == '(') {
      ++pos_;
      auto inner = parse_or(rec + 1);
      if (!inner) return inner;
      ws();
      if (!eat(")")) return err("expected ')'", pos_);
      return inner;
    }
    auto path = parse_path();
    if (!path) return path.error();
    ws();
    FilterExpr f;
    f.where = where(start);
    f.path = std::move(*path);
    const std::size_t op_at = pos_;
    bool negated_in = false;
    if (s_.substr(pos_, 2) != "!=" && eat("!")) {
      ws();
      if (!at_word("in")) return err("expected 'in' after '!'", pos_);
      negated_in = true;
    }
    if (at_word("in")) {
      pos_ += 2;
      f.kind = FKind::in;
      TICKDB_TRY(parse_in_list(f));
      if (!negated_in) return f;
      FilterExpr n;
      n.kind = FKind::negate;
      n.where = f.where;
      n.kids.push_back(std::move(f));
      return n;
    }
    std::optional<Op> op;
    for (std::string_view t : {"<=", ">=", "!=", "^=", "=", "<", ">", "~"})
      if (eat(t)) {
        op = op_from_text(t);
        break;
      }
    if (!op)
      return err(
          "expected an operator (= != < <= > >= ^= ~ in) after '" + f.path.substr(0, 64) + "'",
          op_at);
    f.kind = FKind::compare;
    f.op = *op;
    ws();
    if (pos_ < s_.size() && is_name_start(s_[pos_]) && !at_word("true") && !at_word("false")) {
      auto rhs = parse_path();
      if (!rhs) return rhs.error();
      f.rhs_path = std::move(*rhs);
      return f;
    }
    auto v = parse_literal();
    if (!v) return v.error();
    f.value = std::move(*v);
    return f;
  }

  Status parse_in_list(FilterExpr& f) {
    ws();
    if (!eat("(")) return err("expected '(' after 'in'", pos_);
    while (true) {
      ws();
      if (pos_ < s_.size() && is_name_start(s_[pos_]) && !at_word("true") && !at_word("false"))
        return err("'in' lists hold literals only", pos_);
      auto v = parse_literal();
      if (!v) return v.error();
      f.values.push_back(std::move(*v));
      if (f.values.size() > kFilterMaxInValues)
        return err("an 'in' list holds at most " + std::to_string(kFilterMaxInValues) + " values",
                   pos_);
      ws();
      if (eat(")")) return {};
      if (!eat(",")) return err("expected ',' or ')' in the 'in' list", pos_);
    }
  }

  Result<std::string> parse_path() {
    const std::size_t start = pos_;
    while (true) {
      if (pos_ >= s_.size() || !is_name_start(s_[pos_])) return err("expected a field name", pos_);
      while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
      if (pos_ < s_.size() && s_[pos_] == '.') {
        ++pos_;
        continue;
      }
      break;
    }
    return std::string(s_.substr(start, pos_ - start));
  }

  Result<json> parse_literal() {
    const std::size_t start = pos_;
    if (pos_ >= s_.size())
      return err("expected a value (a number, a string, true, false or a field)", pos_);
    if (at_word("true")) {
      pos_ += 4;
      return json(true);
    }
    if (at_word("false")) {
      pos_ += 5;
      return json(false);
    }
    char c = s_[pos_];
    std::size_t end = pos_;
    if (c == '"') {
      ++end;
      while (end < s_.size() && s_[end] != '"') end += s_[end] == '\\' ? 2 : 1;
      if (end >= s_.size()) return err("unterminated string", start);
      ++end;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      ++end;
      while (end < s_.size() &&
             ((s_[end] >= '0' && s_[end] <= '9') || s_[end] == '.' || s_[end] == 'e' ||
              s_[end] == 'E' || s_[end] == '+' || s_[end] == '-'))
        ++end;
    } else {
      return err("expected a value (a number, a string, true, false or a field)", start);
    }
    std::string_view tok = s_.substr(pos_, end - pos_);
    // A plain integer (the common literal) without the JSON parser: the same value and type
    // json::parse gives it (unsigned when not negative), for tokens that surely fit.
    {
      const bool neg = tok[0] == '-';
      const std::string_view digits = tok.substr(neg ? 1 : 0);
      if (!digits.empty() && digits.size() <= 18 && (digits[0] != '0' || digits.size() == 1) &&
          digits.find_first_not_of("0123456789") == std::string_view::npos) {
        std::uint64_t u = 0;
        std::from_chars(digits.data(), digits.data() + digits.size(), u);
        pos_ = end;
        if (neg) return json(-static_cast<std::int64_t>(u));
        return json(u);
      }
    }
    try {
      json v = json::parse(tok);
      if (!is_literal(v)) return err("expected a value", start);
      pos_ = end;
      return v;
    } catch (const json::out_of_range&) {
      return err("number '" + std::string(tok.substr(0, 40)) + "' is out of range", start);
    } catch (const json::exception&) {
      return err(c == '"' ? "malformed string"
                          : "malformed number '" + std::string(tok.substr(0, 40)) + "'",
                 start);
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  mutable std::vector<std::size_t> newlines_;  // offsets of s_'s newlines, found by where()
  mutable bool newlines_found_ = false;
};

// ---- the JSON form ----

Result<FilterExpr> parse_json_node(const json& j, const std::string& ptr, std::size_t rec) {
  if (rec > kFilterMaxDepth)
    return filter_error("nesting is deeper than " + std::to_string(kFilterMaxDepth), ptr);
  if (!j.is_array() || j.empty() || !j[0].is_string())
    return filter_error("expected an array [operator, operands...]", ptr);
  const std::string op = j[0].get<std::string>();
  FilterExpr f;
  f.where = ptr;
  auto path_at = [&](std::size_t i) -> Result<std::string> {
    if (!j[i].is_string() || !is_path(j[i].get<std::string>()))
      return filter_error("expected a field name", ptr + "/" + std::to_string(i));
    return j[i].get<std::string>();
  };
  if (op == "&&" || op == "||") {
    if (j.size() < 3) return filter_error("'" + op + "' takes two or more operands", ptr);
    f.kind = op == "&&" ? FKind::all_of : FKind::any_of;
    for (std::size_t i = 1; i < j.size(); ++i) {
      auto kid = parse_json_node(j[i], ptr + "/" + std::to_string(i), rec + 1);
      if (!kid) return kid;
      f.kids.push_back(std::move(*kid));
    }
    return f;
  }
  if (op == "!") {
    if (j.size() != 2) return filter_error("'!' takes one operand", ptr);
    f.kind = FKind::negate;
    auto kid = parse_json_node(j[1], ptr + "/1", rec + 1);
    if (!kid) return kid;
    f.kids.push_back(std::move(*kid));
    return f;
  }
  if (op == "in" || op == "!in") {
    if (j.size() != 3)
      return filter_error("'" + op + "' takes a field and an array of values", ptr);
    auto path = path_at(1);
    if (!path) return path.error();
    if (!j[2].is_array() || j[2].empty())
      return filter_error("expected a non-empty array of values", ptr + "/2");
    if (j[2].size() > kFilterMaxInValues)
      return filter_error(
          "an 'in' list holds at most " + std::to_string(kFilterMaxInValues) + " values",
          ptr + "/2");
    f.kind = FKind::in;
    f.path = std::move(*path);
    for (std::size_t i = 0; i < j[2].size(); ++i) {
      if (!is_literal(j[2][i]))
        return filter_error("'in' lists hold literals only", ptr + "/2/" + std::to_string(i));
      f.values.push_back(j[2][i]);
    }
    if (op == "in") return f;
    FilterExpr n;
    n.kind = FKind::negate;
    n.where = ptr;
    n.kids.push_back(std::move(f));
    return n;
  }
  auto cmp = op_from_text(op);
  if (!cmp) return filter_error("unknown operator '" + op.substr(0, 16) + "'", ptr + "/0");
  if (j.size() != 3) return filter_error("'" + op + "' takes a field and a value", ptr);
  auto path = path_at(1);
  if (!path) return path.error();
  f.kind = FKind::compare;
  f.op = *cmp;
  f.path = std::move(*path);
  const json& rhs = j[2];
  if (rhs.is_object()) {
    if (rhs.size() != 1 || !rhs.contains("field") || !rhs["field"].is_string() ||
        !is_path(rhs["field"].get<std::string>()))
      return filter_error("expected a value or {\"field\": name}", ptr + "/2");
    f.rhs_path = rhs["field"].get<std::string>();
    return f;
  }
  if (!is_literal(rhs)) return filter_error("expected a value or {\"field\": name}", ptr + "/2");
  f.value = rhs;
  return f;
}

// ---- printing ----

void print(const FilterExpr& f, std::string& out) {
  switch (f.kind) {
    case FKind::all_of:
    case FKind::any_of:
      out += '(';
      for (std::size_t i = 0; i < f.kids.size(); ++i) {
        if (i) out += f.kind == FKind::all_of ? " && " : " || ";
        print(f.kids[i], out);
      }
      out += ')';
      return;
    case FKind::negate:
      out += "!(";
      print(f.kids[0], out);
      out += ')';
      return;
    case FKind::compare:
      out += f.path;
      out += ' ';
      out += filter_op_text(f.op);
      out += ' ';
      out += f.rhs_path.empty() ? f.value.dump() : f.rhs_path;
      return;
    case FKind::in:
      out += f.path;
      out += " in (";
      for (std::size_t i = 0; i < f.values.size(); ++i) {
        if (i) out += ", ";
        out += f.values[i].dump();
      }
      out += ')';
      return;
  }
}

}  // namespace

Result<FilterExpr> parse_filter_text(std::string_view text) {
  auto f = TextParser(text).parse();
  if (!f) return f;
  TICKDB_TRY(check_limits(*f));
  return f;
}

Result<FilterExpr> parse_filter_json(const json& j) {
  auto f = parse_json_node(j, "", 0);
  if (!f) return f;
  TICKDB_TRY(check_limits(*f));
  return f;
}

Result<FilterExpr> parse_filter(const json& j) {
  if (j.is_string()) return parse_filter_text(j.get_ref<const std::string&>());
  if (j.is_array()) return parse_filter_json(j);
  return make_error(Errc::invalid_argument,
                    "filter: expected a string (the text form) or an array (the JSON form)");
}

std::string filter_to_string(const FilterExpr& f) {
  std::string out;
  print(f, out);
  return out;
}

// ---- compiling ----

namespace {

using Node = CompiledFilter::Node;
using Code = Node::Code;

enum class Domain { boolean, sint, uint, real, str };

Domain domain_of(Kind k) {
  switch (k) {
    case Kind::Bool:
      return Domain::boolean;
    case Kind::I8:
    case Kind::I16:
    case Kind::I32:
    case Kind::I64:
      return Domain::sint;
    case Kind::F32:
    case Kind::F64:
      return Domain::real;
    case Kind::Str:
      return Domain::str;
    default:
      return Domain::uint;
  }
}

struct Side {
  bool is_id = false;
  Kind kind = Kind::U64;
  std::uint32_t offset = 0, size = 8;
  // For messages only: built when an error needs it, not on every compile.
  std::string type_name() const { return FieldType{kind, size, nullptr}.name(); }
};

Result<Side> resolve(const TableSchema& schema, const std::string& path, const std::string& where) {
  Side s;
  s.is_id = path == "id";
  if (s.is_id) return s;
  auto loc = schema.locate(path);
  if (!loc) {
    if (loc.code() == Errc::not_found)
      return filter_error("unknown field '" + path.substr(0, 128) + "'", where);
    return filter_error(loc.message(), where);
  }
  if (loc->type.kind == Kind::Composite)
    return filter_error("field '" + path.substr(0, 128) + "' is a composite (" + loc->type.name() +
                            "): compare its leaves, e.g. '" + path.substr(0, 128) + "." +
                            loc->type.composite->fields.front().name + "'",
                        where);
  s.kind = loc->type.kind;
  s.offset = loc->offset;
  s.size = loc->type.size;
  return s;
}

std::string literal_text(const json& v) {
  std::string t = v.dump();
  return t.size() > 64 ? t.substr(0, 61) + "..." : t;
}

// Integer bounds of a kind.
void int_bounds(Kind k, std::int64_t& lo, std::uint64_t& hi) {
  switch (k) {
    case Kind::I8:
      lo = INT8_MIN, hi = INT8_MAX;
      return;
    case Kind::I16:
      lo = INT16_MIN, hi = INT16_MAX;
      return;
    case Kind::I32:
      lo = INT32_MIN, hi = INT32_MAX;
      return;
    case Kind::I64:
      lo = INT64_MIN, hi = INT64_MAX;
      return;
    case Kind::U8:
      lo = 0, hi = UINT8_MAX;
      return;
    case Kind::U16:
      lo = 0, hi = UINT16_MAX;
      return;
    case Kind::U32:
      lo = 0, hi = UINT32_MAX;
      return;
    default:
      lo = 0, hi = UINT64_MAX;
      return;
  }
}

// Converts a literal into the field's domain (API.md: "a literal is converted to the field's
// type before comparing"); *long_str is set for a string literal longer than the field.
Status convert_literal(const Side& side, const std::string& path, const json& v,
                       const std::string& where, Node& n, bool* long_str) {
  const Domain d = domain_of(side.kind);
  // The messages are built only on the error paths: a filter compiles on every query.
  auto field = [&] { return side.type_name() + " field '" + path.substr(0, 128) + "'"; };
  if (d == Domain::str) {
    if (!v.is_string())
      return filter_error(field() + " cannot be compared with " + literal_text(v), where);
    n.s = v.get<std::string>();
    *long_str = n.s.size() > side.size;
    return {};
  }
  if (d == Domain::boolean) {
    if (!v.is_boolean())
      return filter_error(field() + " cannot be compared with " + literal_text(v), where);
    n.u = v.get<bool>() ? 1 : 0;
    return {};
  }
  if (!v.is_number())
    return filter_error(field() + " cannot be compared with " + literal_text(v), where);
  if (d == Domain::real) {
    double x = v.get<double>();
    if (side.kind == Kind::F32) {
      if (std::fabs(x) > static_cast<double>(std::numeric_limits<float>::max()))
        return filter_error("literal " + literal_text(v) + " is out of range for " + field(),
                            where);
      x = static_cast<double>(static_cast<float>(x));
    }
    n.d = x == 0 ? 0.0 : x;  // -0.0 = 0.0
    return {};
  }
  std::int64_t lo;
  std::uint64_t hi;
  int_bounds(side.kind, lo, hi);
  auto range = [&] { return "literal " + literal_text(v) + " is out of range for " + field(); };
  if (v.is_number_float()) {
    double x = v.get<double>();
    if (std::trunc(x) != x)
      return filter_error(
          "literal " + literal_text(v) + " is not an integer, as " + field() + " needs", where);
    if (x < static_cast<double>(lo) || x >= 18446744073709551616.0 ||
        (d == Domain::sint && x >= 9223372036854775808.0) ||
        (x > 0 && static_cast<std::uint64_t>(x) > hi))
      return filter_error(range(), where);
    if (d == Domain::sint)
      n.i = static_cast<std::int64_t>(x);
    else
      n.u = static_cast<std::uint64_t>(x);
    return {};
  }
  if (v.is_number_unsigned()) {
    std::uint64_t x = v.get<std::uint64_t>();
    if (x > hi) return filter_error(range(), where);
    if (d == Domain::sint)
      n.i = static_cast<std::int64_t>(x);
    else
      n.u = x;
    return {};
  }
  std::int64_t x = v.get<std::int64_t>();
  if (x < lo || (x > 0 && static_cast<std::uint64_t>(x) > hi)) return filter_error(range(), where);
  if (d == Domain::sint)
    n.i = x;
  else
    n.u = static_cast<std::uint64_t>(x);
  return {};
}

bool op_applies(Domain d, Op op) {
  if (op == Op::prefix || op == Op::contains) return d == Domain::str;
  if (d == Domain::boolean) return op == Op::eq || op == Op::ne;
  return true;
}

class Compiler {
 public:
  Compiler(const TableSchema& s, std::vector<Node>& nodes) : schema_(s), nodes_(nodes) {}

  Result<std::uint32_t> emit(const FilterExpr& f) {
    const auto at = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
    switch (f.kind) {
      case FKind::all_of:
      case FKind::any_of:
      case FKind::negate: {
        Node n;
        n.code = f.kind == FKind::all_of   ? Code::all_of
                 : f.kind == FKind::any_of ? Code::any_of
                                           : Code::negate;
        for (const auto& k : f.kids) {
          auto idx = emit(k);
          if (!idx) return idx;
          n.kids.push_back(*idx);
        }
        nodes_[at] = std::move(n);
        return at;
      }
      case FKind::compare: {
        auto n = compare(f);
        if (!n) return n.error();
        nodes_[at] = std::move(*n);
        return at;
      }
      case FKind::in: {
        auto n = in(f);
        if (!n) return n.error();
        nodes_[at] = std::move(*n);
        return at;
      }
    }
    return at;
  }

 private:
  Result<Node> compare(const FilterExpr& f) {
    auto left = resolve(schema_, f.path, f.where);
    if (!left) return left.error();
    Node n;
    n.op = f.op;
    n.kind = left->kind;
    n.is_id = left->is_id;
    n.offset = left->offset;
    n.size = left->size;
    const Domain d = domain_of(left->kind);
    if (!op_applies(d, f.op))
      return filter_error("'" + std::string(filter_op_text(f.op)) + "' does not apply to " +
                              left->type_name() + " field '" + f.path.substr(0, 128) + "'",
                          f.where);
    if (!f.rhs_path.empty()) {
      auto right = resolve(schema_, f.rhs_path, f.where);
      if (!right) return right.error();
      const Domain rd = domain_of(right->kind);
      const bool numeric = d != Domain::str && d != Domain::boolean;
      const bool rnumeric = rd != Domain::str && rd != Domain::boolean;
      if (!(numeric && rnumeric) && d != rd)
        return filter_error(left->type_name() + " field '" + f.path.substr(0, 128) +
                                "' cannot be compared with " + right->type_name() + " field '" +
                                f.rhs_path.substr(0, 128) + "'",
                            f.where);
      n.code = Code::cmp_field;
      n.rkind = right->kind;
      n.r_is_id = right->is_id;
      n.roffset = right->offset;
      n.rsize = right->size;
      return n;
    }
    bool long_str = false;
    TICKDB_TRY(convert_literal(*left, f.path, f.value, f.where, n, &long_str));
    n.code = Code::cmp_lit;
    if (long_str) {
      // A literal longer than the field: no stored value equals it or starts with it or holds
      // it; the orderings still compare bytes.
      if (f.op == Op::eq || f.op == Op::prefix || f.op == Op::contains)
        n.code = Code::never;
      else if (f.op == Op::ne)
        n.code = Code::always;
    } else if (d == Domain::str && n.s.empty() && (f.op == Op::prefix || f.op == Op::contains)) {
      n.code = Code::always;
    }
    return n;
  }

  Result<Node> in(const FilterExpr& f) {
    auto left = resolve(schema_, f.path, f.where);
    if (!left) return left.error();
    Node n;
    n.code = Code::in_set;
    n.kind = left->kind;
    n.is_id = left->is_id;
    n.offset = left->offset;
    n.size = left->size;
    const Domain d = domain_of(left->kind);
    for (std::size_t i = 0; i < f.values.size(); ++i) {
      Node lit;
      bool long_str = false;
      TICKDB_TRY(convert_literal(*left, f.path, f.values[i], f.where, lit, &long_str));
      switch (d) {
        case Domain::sint:
          n.iset.push_back(lit.i);
          break;
        case Domain::real:
          n.dset.push_back(lit.d);
          break;
        case Domain::str:
          if (!long_str) n.sset.push_back(std::move(lit.s));
          break;
        default:
          n.uset.push_back(lit.u);
          break;
      }
    }
    auto sort_unique = [](auto& v) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
    };
    sort_unique(n.iset);
    sort_unique(n.uset);
    sort_unique(n.dset);
    sort_unique(n.sset);
    if (n.iset.empty() && n.uset.empty() && n.dset.empty() && n.sset.empty()) n.code = Code::never;
    return n;
  }

  const TableSchema& schema_;
  std::vector<Node>& nodes_;
};

// ---- evaluation ----

// A numeric value of any field type, for exact comparisons between fields of two types.
struct Num {
  Domain d = Domain::uint;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double x = 0;
};

int cmp3(auto a, auto b) {
  return a < b ? -1 : b < a ? 1 : 0;
}

int cmp_int_real(std::int64_t v, double x) {
  if (x >= 9223372036854775808.0) return -1;
  if (x < -9223372036854775808.0) return 1;
  const double t = std::trunc(x);
  const auto ti = static_cast<std::int64_t>(t);
  if (v != ti) return v < ti ? -1 : 1;
  return x > t ? -1 : x < t ? 1 : 0;
}
int cmp_uint_real(std::uint64_t v, double x) {
  if (x < 0) return 1;
  if (x >= 18446744073709551616.0) return -1;
  const double t = std::trunc(x);
  const auto tu = static_cast<std::uint64_t>(t);
  if (v != tu) return v < tu ? -1 : 1;
  return x > t ? -1 : 0;
}

int cmp_num(const Num& a, const Num& b) {
  if (a.d == b.d) {
    if (a.d == Domain::sint) return cmp3(a.i, b.i);
    if (a.d == Domain::real) return cmp3(a.x, b.x);
    return cmp3(a.u, b.u);
  }
  if (a.d == Domain::real) return -cmp_num(b, a);
  if (b.d == Domain::real)
    return a.d == Domain::sint ? cmp_int_real(a.i, b.x) : cmp_uint_real(a.u, b.x);
  // one signed, one unsigned
  if (a.d == Domain::sint) return a.i < 0 ? -1 : cmp3(static_cast<std::uint64_t>(a.i), b.u);
  return b.i < 0 ? 1 : cmp3(a.u, static_cast<std::uint64_t>(b.i));
}

Num load_num(Kind k, bool is_id, const std::byte* p, std::uint64_t id) {
  Num n;
  n.d = domain_of(k);
  if (is_id) {
    n.u = id;
    return n;
  }
  switch (k) {
    case Kind::Bool:
      n.u = load_bool(p);
      break;
    case Kind::I8:
      n.i = load<std::int8_t>(p);
      break;
    case Kind::I16:
      n.i = load<std::int16_t>(p);
      break;
    case Kind::I32:
      n.i = load<std::int32_t>(p);
      break;
    case Kind::I64:
      n.i = load<std::int64_t>(p);
      break;
    case Kind::U8:
      n.u = load<std::uint8_t>(p);
      break;
    case Kind::U16:
      n.u = load<std::uint16_t>(p);
      break;
    case Kind::U32:
      n.u = load<std::uint32_t>(p);
      break;
    case Kind::U64:
      n.u = load<std::uint64_t>(p);
      break;
    case Kind::F32:
      n.x = load<float>(p);
      break;
    case Kind::F64:
      n.x = load<double>(p);
      break;
    default:
      break;
  }
  return n;
}

bool apply(Op op, int c) {
  switch (op) {
    case Op::eq:
      return c == 0;
    case Op::ne:
      return c != 0;
    case Op::lt:
      return c < 0;
    case Op::le:
      return c <= 0;
    case Op::gt:
      return c > 0;
    case Op::ge:
      return c >= 0;
    default:
      return false;
  }
}

bool str_match(Op op, std::string_view v, std::string_view lit) {
  switch (op) {
    case Op::prefix:
      return v.substr(0, lit.size()) == lit;
    case Op::contains:
      return v.find(lit) != std::string_view::npos;
    default:
      return apply(op, v.compare(lit) < 0 ? -1 : v.compare(lit) > 0 ? 1 : 0);
  }
}

bool leaf_match(const Node& n, const std::byte* rec, std::uint64_t id) {
  const std::byte* p = rec + n.offset;
  const Domain d = domain_of(n.kind);
  switch (n.code) {
    case Code::always:
      return true;
    case Code::never:
      return false;
    case Code::cmp_lit: {
      if (d == Domain::str) return str_match(n.op, load_str(p, n.size), n.s);
      Num v = load_num(n.kind, n.is_id, p, id);
      if (d == Domain::sint) return apply(n.op, cmp3(v.i, n.i));
      if (d == Domain::real) return apply(n.op, cmp3(v.x, n.d));
      return apply(n.op, cmp3(v.u, n.u));
    }
    case Code::cmp_field: {
      const std::byte* q = rec + n.roffset;
      if (d == Domain::str) return str_match(n.op, load_str(p, n.size), load_str(q, n.rsize));
      return apply(n.op,
                   cmp_num(load_num(n.kind, n.is_id, p, id), load_num(n.rkind, n.r_is_id, q, id)));
    }
    case Code::in_set: {
      if (d == Domain::str) {
        std::string_view v = load_str(p, n.size);
        auto it = std::lower_bound(n.sset.begin(), n.sset.end(), v,
                                   [](const std::string& a, std::string_view b) { return a < b; });
        return it != n.sset.end() && *it == v;
      }
      Num v = load_num(n.kind, n.is_id, p, id);
      if (d == Domain::sint) return std::binary_search(n.iset.begin(), n.iset.end(), v.i);
      if (d == Domain::real)
        return std::binary_search(n.dset.begin(), n.dset.end(), v.x == 0 ? 0.0 : v.x);
      return std::binary_search(n.uset.begin(), n.uset.end(), v.u);
    }
    default:
      return false;
  }
}

bool match_node(const std::vector<Node>& nodes, std::uint32_t at, const std::byte* rec,
                std::uint64_t id) {
  const Node& n = nodes[at];
  switch (n.code) {
    case Code::all_of:
      for (auto k : n.kids)
        if (!match_node(nodes, k, rec, id)) return false;
      return true;
    case Code::any_of:
      for (auto k : n.kids)
        if (match_node(nodes, k, rec, id)) return true;
      return false;
    case Code::negate:
      return !match_node(nodes, n.kids[0], rec, id);
    default:
      return leaf_match(n, rec, id);
  }
}

// How a leaf's result goes into the mask: written, or combined with what is there (the
// operands of && and || after the first write straight into the mask: no second pass).
enum class Into { set, and_, or_ };

// The tight loops: one per (stored type, comparison, combination), over a chunk's records.
//
// `pf` (or nullptr): the same field in the next chunk, prefetched into L2 one record at a time
// as this chunk is read, so the next chunk's lines arrive spread over this chunk's work. The
// hardware prefetcher restarts at every chunk (chunks are separate blocks, in no order once
// written), and a burst of a whole chunk's prefetches at its start stalls on the core's
// outstanding misses (docs/benchmarks.md, Queries).
template <Into M, class T, class V, class Cmp>
void cmp_loop(const std::byte* p, std::uint32_t rs, std::uint32_t n, V lit, std::uint8_t* out,
              Cmp cmp, const std::byte* pf) {
  for (std::uint32_t i = 0; i < n; ++i, p += rs) {
    if (pf) __builtin_prefetch(pf + std::size_t{i} * rs, 0, 1);
    T v;
    std::memcpy(&v, p, sizeof(T));
    const std::uint8_t r = cmp(static_cast<V>(v), lit);
    if constexpr (M == Into::set)
      out[i] = r;
    else if constexpr (M == Into::and_)
      out[i] &= r;
    else
      out[i] |= r;
  }
}

template <Into M, class T, class V>
void cmp_loop_op(Op op, const std::byte* p, std::uint32_t rs, std::uint32_t n, V lit,
                 std::uint8_t* out, const std::byte* pf = nullptr) {
  switch (op) {
    case Op::eq:
      return cmp_loop<M, T, V>(p, rs, n, lit, out, std::equal_to<V>(), pf);
    case Op::ne:
      return cmp_loop<M, T, V>(p, rs, n, lit, out, std::not_equal_to<V>(), pf);
    case Op::lt:
      return cmp_loop<M, T, V>(p, rs, n, lit, out, std::less<V>(), pf);
    case Op::le:
      return cmp_loop<M, T, V>(p, rs, n, lit, out, std::less_equal<V>(), pf);
    case Op::gt:
      return cmp_loop<M, T, V>(p, rs, n, lit, out, std::greater<V>(), pf);
    case Op::ge:
      return cmp_loop<M, T, V>(p, rs, n, lit, out, std::greater_equal<V>(), pf);
    default:
      return;  // not a numeric comparison: compile() never gives one here
  }
}

// True when it handled the leaf with a tight loop.
template <Into M>
bool leaf_chunk(const Node& n, const ChunkSpan& c, std::uint8_t* out) {
  if (n.code != Code::cmp_lit || domain_of(n.kind) == Domain::str) return false;
  const std::byte* p = c.records + n.offset;
  const std::byte* pf = c.next_records ? c.next_records + n.offset : nullptr;
  const std::uint32_t rs = c.record_size, cnt = c.count;
  if (n.is_id) {
    cmp_loop_op<M, std::uint64_t, std::uint64_t>(n.op, reinterpret_cast<const std::byte*>(c.ids), 8,
                                                 cnt, n.u, out);
    return true;
  }
  switch (n.kind) {
    case Kind::I8:
      cmp_loop_op<M, std::int8_t, std::int64_t>(n.op, p, rs, cnt, n.i, out, pf);
      return true;
    case Kind::I16:
      cmp_loop_op<M, std::int16_t, std::int64_t>(n.op, p, rs, cnt, n.i, out, pf);
      return true;
    case Kind::I32:
      cmp_loop_op<M, std::int32_t, std::int32_t>(n.op, p, rs, cnt, static_cast<std::int32_t>(n.i),
                                                 out, pf);
      return true;
    case Kind::I64:
      cmp_loop_op<M, std::int64_t, std::int64_t>(n.op, p, rs, cnt, n.i, out, pf);
      return true;
    case Kind::U8:
      cmp_loop_op<M, std::uint8_t, std::uint64_t>(n.op, p, rs, cnt, n.u, out, pf);
      return true;
    case Kind::U16:
      cmp_loop_op<M, std::uint16_t, std::uint64_t>(n.op, p, rs, cnt, n.u, out, pf);
      return true;
    case Kind::U32:
      cmp_loop_op<M, std::uint32_t, std::uint32_t>(n.op, p, rs, cnt,
                                                   static_cast<std::uint32_t>(n.u), out, pf);
      return true;
    case Kind::U64:
      cmp_loop_op<M, std::uint64_t, std::uint64_t>(n.op, p, rs, cnt, n.u, out, pf);
      return true;
    case Kind::F32:
      cmp_loop_op<M, float, float>(n.op, p, rs, cnt, static_cast<float>(n.d), out, pf);
      return true;
    case Kind::F64:
      cmp_loop_op<M, double, double>(n.op, p, rs, cnt, n.d, out, pf);
      return true;
    case Kind::Bool:
      cmp_loop_op<M, std::uint8_t, std::uint64_t>(n.op, p, rs, cnt, n.u, out, pf);
      return true;
    default:
      return false;
  }
}

void eval_chunk(const std::vector<Node>& nodes, std::uint32_t at, const ChunkSpan& c,
                std::uint8_t* out, std::uint8_t* scratch) {
  const Node& n = nodes[at];
  const std::uint32_t cnt = c.count;
  switch (n.code) {
    case Code::all_of:
    case Code::any_of: {
      eval_chunk(nodes, n.kids[0], c, out, scratch + cnt);
      if (n.code == Code::all_of && n.kids.size() > 1) {
        // Few records left after the first operand: the others run on those records only
        // (a selective first comparison makes the rest of an && almost free).
        std::uint32_t left = 0;
        for (std::uint32_t i = 0; i < cnt; ++i) left += out[i];
        if (left <= cnt / 16) {
          // Eight mask bytes at a time: runs of records already out cost one load.
          for (std::uint32_t i0 = 0; i0 < cnt; i0 += 8) {
            const std::uint32_t i1 = std::min(cnt, i0 + 8);
            std::uint64_t word = 0;
            std::memcpy(&word, out + i0, i1 - i0);
            if (!word) continue;
            for (std::uint32_t i = i0; i < i1; ++i) {
              if (!out[i]) continue;
              const std::byte* rec = c.records + std::size_t{i} * c.record_size;
              for (std::size_t k = 1; k < n.kids.size() && out[i]; ++k)
                out[i] = match_node(nodes, n.kids[k], rec, c.ids[i]);
            }
          }
          return;
        }
      }
      for (std::size_t k = 1; k < n.kids.size(); ++k) {
        const Node& kid = nodes[n.kids[k]];
        if (n.code == Code::all_of ? leaf_chunk<Into::and_>(kid, c, out)
                                   : leaf_chunk<Into::or_>(kid, c, out))
          continue;
        eval_chunk(nodes, n.kids[k], c, scratch, scratch + cnt);
        if (n.code == Code::all_of)
          for (std::uint32_t i = 0; i < cnt; ++i) out[i] &= scratch[i];
        else
          for (std::uint32_t i = 0; i < cnt; ++i) out[i] |= scratch[i];
      }
      return;
    }
    case Code::negate:
      eval_chunk(nodes, n.kids[0], c, out, scratch);
      for (std::uint32_t i = 0; i < cnt; ++i) out[i] ^= 1;
      return;
    case Code::always:
    case Code::never:
      std::memset(out, n.code == Code::always ? 1 : 0, cnt);
      return;
    default:
      if (leaf_chunk<Into::set>(n, c, out)) return;
      const std::byte* rec = c.records;
      for (std::uint32_t i = 0; i < cnt; ++i, rec += c.record_size)
        out[i] = leaf_match(n, rec, c.ids[i]);
  }
}

std::size_t node_depth(const std::vector<Node>& nodes, std::uint32_t at) {
  std::size_t d = 0;
  for (auto k : nodes[at].kids) d = std::max(d, node_depth(nodes, k));
  return d + 1;
}

}  // namespace

Result<CompiledFilter> CompiledFilter::compile(const FilterExpr& f, const TableSchema& schema) {
  CompiledFilter cf;
  Compiler c(schema, cf.nodes_);
  auto root = c.emit(f);
  if (!root) return root.error();
  cf.depth_ = node_depth(cf.nodes_, 0);
  return cf;
}

bool CompiledFilter::match(const std::byte* record, std::uint64_t id) const {
  return match_node(nodes_, 0, record, id);
}

void CompiledFilter::match_chunk(const ChunkSpan& c, std::uint8_t* out,
                                 std::vector<std::uint8_t>& scratch) const {
  const std::size_t need = std::size_t{c.count} * (depth_ + 1);
  if (scratch.size() < need) scratch.resize(need);
  eval_chunk(nodes_, 0, c, out, scratch.data());
  if (c.alive)
    for (std::uint32_t i = 0; i < c.count; ++i) out[i] &= c.alive[i] != 0;
}

std::uint64_t CompiledFilter::count(const TableVersion& t) const {
  std::vector<std::uint8_t> mask(t.records_per_chunk()), scratch;
  std::uint64_t n = 0;
  // Not t.chunks(): its burst of the next chunk's records is replaced by the leaf loops'
  // prefetches (ChunkSpan::next_records); only the header two chunks ahead is asked for.
  const std::size_t chunks = t.used_chunk_count();
  for (std::size_t k = 0; k < chunks; ++k) {
    if (k + 2 < chunks) __builtin_prefetch(t.chunk(k + 2));
    const ChunkSpan c = t.chunk_span(k);
    match_chunk(c, mask.data(), scratch);
    std::uint64_t hits = 0;
    for (std::uint32_t i = 0; i < c.count; ++i) hits += mask[i];
    n += hits;
  }
  return n;
}

}  // namespace tickdb
