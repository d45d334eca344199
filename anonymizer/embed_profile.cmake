# Writes OUTPUT: a C++ source holding the PS3.15 table (schemas/anonymizer/*.tsv) as text, so the
# table stays data in one file and the binary needs no file at run time.
file(GLOB tables CONFIGURE_DEPENDS "${TABLE_DIR}/ps3.15-e1-1.*.tsv")
# An edited file re-runs the embedding too (the glob alone notices only added or removed ones).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${tables})
list(LENGTH tables count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected exactly one ps3.15-e1-1.*.tsv in ${TABLE_DIR}")
endif()
list(GET tables 0 table)
get_filename_component(name "${table}" NAME)
file(READ "${table}" text)
file(WRITE "${OUTPUT}.tmp" "// Generated from ${name} by anonymizer/embed_profile.cmake: do not edit.\n#include \"anonymizer/profile_table.h\"\n\nnamespace procnode {\n\nconst char* const kProfileTableName = \"${name}\";\nconst char* const kProfileTableText = R\"procnodetsv(${text})procnodetsv\";\n\n}  // namespace procnode\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
