# The fuzz targets: every fuzz/fuzz_*.cc. One list for both their build (fuzz/CMakeLists.txt,
# the clang build) and their bounded runs in the test suite (tests/CMakeLists.txt), so a new
# fuzzer runs in ctest without another edit.
file(GLOB STARLING_FUZZER_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/fuzz/fuzz_*.cc)
set(STARLING_FUZZERS "")
foreach(source ${STARLING_FUZZER_SOURCES})
  get_filename_component(name ${source} NAME_WE)
  list(APPEND STARLING_FUZZERS ${name})
endforeach()
