// The shape of a table's records as leaves (`hp`, `pos.x`, `name`): what import and export
// need to turn records into CSV rows and back, and to check a line of an import file against
// the schema before it is sent, so a bad line is reported with its own line number rather than
// as the refusal of a whole batch.
//
// Built once per command from the table description and the composite types the node
// answered; immutable afterwards: const methods are safe from many threads.
#pragma once

#include <string>
#include <vector>
#include "tools/cli/json.h"

namespace tickdb::cli {

struct Leaf {
  std::vector<std::string> path;  // {"pos", "x"}
  std::string dotted;             // "pos.x"
  std::string type;               // a built-in: bool, i8..u64, f32, f64, str
  int size = 0;                   // bytes (the N of str)
};

class RecordShape {
 public:
  // `table`: a table description (GET /table/{name}); `types`: the composite types
  // (GET /types, its "types" array). Throws CliError(kExitServerError) on an unknown type.
  RecordShape(const json& table, const json& types);

  const std::vector<Leaf>& leaves() const { return leaves_; }
  // "id" then every leaf, dotted: a CSV header.
  std::vector<std::string> header() const;
  // A record (as the node answers it) as the cells of header(): numbers as JSON text
  // (exact: u64 in full, floats in their shortest round-trip form), strings as they are.
  std::vector<std::string> to_cells(const json& record) const;
  // A CSV record back into a JSON record, each cell converted by its leaf's type; `columns`
  // maps header positions to leaf indexes (-1: the id column). Throws std::invalid_argument
  // naming the column on a bad cell.
  std::vector<int> columns_of(const std::vector<std::string>& header) const;
  json from_cells(const std::vector<int>& columns, const std::vector<std::string>& cells) const;
  // Checks a JSON record against the schema (an object; known fields; values of the right
  // type, in range, strings not too long). Throws std::invalid_argument saying what is wrong.
  void check(const json& record) const;

 private:
  struct Node {  // the schema as a tree, for check()
    std::string name, type;
    int size = 0;
    std::vector<Node> fields;  // a composite's fields
  };
  void check_node(const std::vector<Node>& fields, const json& v, const std::string& where) const;
  std::vector<Node> tree_;
  std::vector<Leaf> leaves_;
};

// A scalar cell converted to JSON by a built-in type; throws std::invalid_argument.
json cell_to_json(const std::string& cell, const std::string& type, int size);
// A JSON scalar checked against a built-in type; throws std::invalid_argument.
void check_scalar(const json& v, const std::string& type, int size);

}  // namespace tickdb::cli
