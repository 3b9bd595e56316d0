// A shared library that is no tickdb module: it lacks tickdb_module_register.
extern "C" int not_a_module() { return 1; }
