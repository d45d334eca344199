# Writes OUTPUT: a C++ source with every migration in SCHEMA_DIR (NNNN_name.sql) as data, returned
# by MIGRATIONS_FUNCTION (default JobDbMigrations; the PHI vault uses it for VaultMigrations).
# Run at configure time; the glob is CONFIGURE_DEPENDS so a new migration re-runs it.
if(NOT MIGRATIONS_FUNCTION)
  set(MIGRATIONS_FUNCTION JobDbMigrations)
endif()
file(GLOB sql_files CONFIGURE_DEPENDS "${SCHEMA_DIR}/[0-9][0-9][0-9][0-9]_*.sql")
# An edited file re-runs the embedding too (the glob alone notices only added or removed ones).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${sql_files})
list(SORT sql_files)
set(body "")
foreach(path IN LISTS sql_files)
  get_filename_component(name "${path}" NAME_WE)
  string(SUBSTRING "${name}" 0 4 number)
  math(EXPR version "${number}")
  file(READ "${path}" sql)
  string(APPEND body "    {${version}, \"${name}\", R\"procnodesql(${sql})procnodesql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from ${SCHEMA_DIR} by pg/embed_migrations.cmake: do not edit.\n#include \"pg/migrations.h\"\n\nnamespace procnode {\n\nconst std::vector<Migration>& ${MIGRATIONS_FUNCTION}() {\n  static const std::vector<Migration> migrations{\n${body}  };\n  return migrations;\n}\n\n}  // namespace procnode\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
