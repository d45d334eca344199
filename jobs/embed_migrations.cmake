# Writes OUTPUT: a C++ source with every jobdb migration (schemas/jobdb/NNNN_name.sql) as data.
# Run at configure time; the glob is CONFIGURE_DEPENDS so a new migration re-runs it.
file(GLOB sql_files CONFIGURE_DEPENDS "${SCHEMA_DIR}/[0-9][0-9][0-9][0-9]_*.sql")
list(SORT sql_files)
set(body "")
foreach(path IN LISTS sql_files)
  get_filename_component(name "${path}" NAME_WE)
  string(SUBSTRING "${name}" 0 4 number)
  math(EXPR version "${number}")
  file(READ "${path}" sql)
  string(APPEND body "    {${version}, \"${name}\", R\"procnodesql(${sql})procnodesql\"},\n")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from schemas/jobdb by jobs/embed_migrations.cmake: do not edit.\n#include \"jobs/migrations.h\"\n\nnamespace procnode {\n\nconst std::vector<Migration>& JobDbMigrations() {\n  static const std::vector<Migration> migrations{\n${body}  };\n  return migrations;\n}\n\n}  // namespace procnode\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
