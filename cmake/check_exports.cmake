# Fails unless the dynamic symbol table of MODULE defines exactly the symbols in EXPECTED (a
# ;-list): a plugin or module must export its entry points and nothing of the code linked into it.
#   cmake -DMODULE=lib.so "-DEXPECTED=a;b" -P check_exports.cmake
execute_process(COMMAND nm -D --defined-only ${MODULE} OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm failed on ${MODULE}")
endif()
string(REGEX MATCHALL "[TWDRB] [A-Za-z_][A-Za-z0-9_]*" defined "${symbols}")
list(TRANSFORM defined REPLACE "^[TWDRB] " "")
list(SORT defined)
set(expected ${EXPECTED})
list(SORT expected)
if(NOT defined STREQUAL expected)
  message(FATAL_ERROR "${MODULE} exports: ${defined}\nexpected: ${expected}")
endif()
message(STATUS "exports: ${defined}")
