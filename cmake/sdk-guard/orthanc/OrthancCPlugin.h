// Every target except the plugin MODULE has this folder on its include path ahead of
// /usr/include, so core code that includes the Orthanc SDK stops here (see CMakeLists.txt).
#error "The Orthanc plugin SDK may only be included from plugin/: keep core libraries SDK-free."
