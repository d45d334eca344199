#include "processors/external/tool_manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "processors/builtin.h"
#include "processors/external/external_tool.h"

namespace procnode {
namespace {

using nlohmann::json;

json Minimal() {
  return {{"manifest_version", 1},
          {"name", "demo-tool"},
          {"version", "1"},
          {"description", "a demo"},
          {"command", {"python3", "{tool}/run.py"}},
          {"outputs", {{"measurements", true}}}};
}

// The message of the Error that parsing `manifest` throws ("" when it parses).
std::string Refusal(const json& manifest) {
  try {
    ParseToolManifest(manifest.dump(), "tool.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    return e.what();
  }
  return "";
}

TEST(ToolManifest, TheShippedExamplesParseWithTheirParameters) {
  const auto normalize = ReadToolManifest(PROCNODE_SOURCE_DIR "/tools/normalize-intensity/tool.json");
  EXPECT_EQ(normalize.name, "normalize-intensity");
  EXPECT_EQ(normalize.command.front(), "python3");
  EXPECT_TRUE(normalize.labels && normalize.measurements && normalize.report);
  EXPECT_EQ(normalize.derived, std::vector<std::string>{"normalized.nii.gz"});
  ASSERT_EQ(normalize.parameters.size(), 4u);
  EXPECT_EQ(normalize.folder, std::filesystem::path(PROCNODE_SOURCE_DIR "/tools/normalize-intensity").lexically_normal().string());
  EXPECT_EQ(normalize.manifest_sha256.size(), 64u);
  const auto shell = ReadToolManifest(PROCNODE_SOURCE_DIR "/tools/volume-above/tool.json");
  EXPECT_EQ(shell.memory_bytes, 1024ull << 20);
  EXPECT_EQ(shell.time_limit_seconds, 120);
  EXPECT_TRUE(shell.modalities.empty());
}

TEST(ToolManifest, DefaultsAreSaneWhenOnlyTheRequiredKeysAreGiven) {
  const auto m = ParseToolManifest(Minimal().dump(), "tool.json");
  EXPECT_EQ(m.cpus, 1);
  EXPECT_EQ(m.memory_bytes, 2048ull << 20);
  EXPECT_EQ(m.time_limit_seconds, 600);
  EXPECT_EQ(m.max_output_bytes, 1024ull << 20);
  EXPECT_FALSE(m.gpu);
  EXPECT_FALSE(m.input_dicom);
  EXPECT_EQ(m.report_title, "demo-tool report");
}

TEST(ToolManifest, BadManifestsAreRefusedNamingTheirJsonPointer) {
  struct Case {
    std::function<void(json&)> edit;
    std::string expected;
  };
  const std::vector<Case> cases{
      {[](json& m) { m.erase("manifest_version"); }, "/manifest_version: missing"},
      {[](json& m) { m["manifest_version"] = 2; }, "/manifest_version: must be an integer from 1 to 1"},
      {[](json& m) { m["name"] = "Bad Name"; }, "/name: must be lower-case"},
      {[](json& m) { m["colour"] = "red"; }, "/colour: unknown key"},
      {[](json& m) { m.erase("command"); }, "/command: missing"},
      {[](json& m) { m["command"] = json::array(); }, "/command: must name a program"},
      {[](json& m) { m["command"] = "python3 run.py"; }, "/command: must be a list of strings"},
      {[](json& m) { m["command"] = {"bin/run"}; }, "/command/0: a path must be absolute or start with {tool}/"},
      {[](json& m) { m["modalities"] = {"CT", "ct"}; }, "/modalities/1:"},
      {[](json& m) { m["outputs"] = json::object(); }, "/outputs: declares nothing"},
      {[](json& m) { m["outputs"]["derived"] = {"../x.nii.gz"}; }, "/outputs/derived/0: must be a plain file name"},
      {[](json& m) { m["outputs"]["derived"] = {"labels.nii.gz"}; }, "/outputs/derived/0: is named twice"},
      {[](json& m) { m["outputs"]["max_output_mb"] = 0; }, "/outputs/max_output_mb: must be an integer"},
      {[](json& m) { m["requirements"] = {{"memory_mb", "lots"}}; }, "/requirements/memory_mb: must be an integer"},
      {[](json& m) { m["requirements"] = {{"gpu_memory_mb", 100}}; }, "/requirements/gpu_memory_mb: needs \"gpu\": true"},
      {[](json& m) { m["requirements"] = {{"time_limit_seconds", 0}}; }, "/requirements/time_limit_seconds:"},
      {[](json& m) { m["inputs"] = {{"nifti", false}}; }, "/inputs/nifti: must be true"},
      {[](json& m) { m["parameters"] = {{"properties", {{"x", {{"type", "number"}}}}}}; },
       "/parameters/properties/x/default: missing"},
      {[](json& m) { m["parameters"] = {{"properties", {{"x", {{"type", "array"}, {"default", json::array()}}}}}}; },
       "/parameters/properties/x/type:"},
      {[](json& m) { m["parameters"] = {{"properties", {{"x", {{"type", "number"}, {"default", 5}, {"maximum", 1}}}}}}; },
       "/parameters/properties/x/default: 5 is outside"},
      {[](json& m) { m["parameters"] = {{"properties", {{"x", {{"type", "string"}, {"default", "c"}, {"enum", {"a", "b"}}}}}}}; },
       "/parameters/properties/x/default: 'c' is not one of a, b"},
      {[](json& m) { m["parameters"] = {{"additionalProperties", true}}; }, "/parameters/additionalProperties: must be false"},
      {[](json& m) { m["read_only_paths"] = {"/etc"}; }, "/read_only_paths/0: would show the tool the node's own files"},
      {[](json& m) { m["read_only_paths"] = {"/var/lib/postgresql/15"}; }, "/read_only_paths/0: would show"},
      {[](json& m) { m["read_only_paths"] = {"/opt/../etc"}; }, "/read_only_paths/0: must be an absolute, normal path"},
  };
  for (const auto& c : cases) {
    json manifest = Minimal();
    c.edit(manifest);
    const std::string message = Refusal(manifest);
    EXPECT_NE(message.find(c.expected), std::string::npos) << manifest.dump() << "\n  gave: " << message;
    EXPECT_EQ(message.rfind("tool.json: /", 0), 0u) << message;
  }
  EXPECT_NE(Refusal(json::array()).find("tool.json: /: must be an object"), std::string::npos);
  EXPECT_THROW(ParseToolManifest("{not json", "tool.json"), Error);
}

TEST(ToolManifest, ParametersAreCheckedLikeANativeProcessors) {
  json manifest = Minimal();
  manifest["parameters"] = {{"type", "object"},
                            {"properties", {{"threshold", {{"type", "number"}, {"minimum", 0}, {"maximum", 10}, {"default", 2}}},
                                            {"mode", {{"type", "string"}, {"enum", {"a", "b"}}, {"default", "a"}}}}}};
  manifest["requirements"] = {{"memory_mb", 512}, {"gpu", true}, {"gpu_memory_mb", 1024}};
  const ProcessorInfo info = ToolProcessorInfo(ParseToolManifest(manifest.dump(), "tool.json"));
  EXPECT_EQ(info.kind, "external");
  EXPECT_TRUE(info.requires_gpu);
  EXPECT_EQ(info.host_bytes_fixed, 512ull << 20);
  EXPECT_EQ(info.gpu_bytes_fixed, 1024ull << 20);
  EXPECT_EQ(ResolveParameters(info, json::object()), (json{{"threshold", 2}, {"mode", "a"}}));
  EXPECT_THROW(ResolveParameters(info, json{{"threshold", 11}}), Error);
  EXPECT_THROW(ResolveParameters(info, json{{"mode", "c"}}), Error);
  EXPECT_THROW(ResolveParameters(info, json{{"other", 1}}), Error);
  EXPECT_EQ(ParameterSchema(info)["properties"]["threshold"]["maximum"], 10);
}

TEST(ToolManifest, AFolderOfToolsRegistersTheGoodOnesAndNamesTheBadOnes) {
  const auto root = std::filesystem::temp_directory_path() / ("procnode-tools-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "good");
  std::filesystem::create_directories(root / "bad");
  std::filesystem::create_directories(root / "clash");
  std::ofstream(root / "good" / "tool.json") << Minimal().dump();
  json bad = Minimal();
  bad["name"] = "bad-tool";
  bad["requirements"] = {{"cpus", 0}};
  std::ofstream(root / "bad" / "tool.json") << bad.dump();
  json clash = Minimal();
  clash["name"] = "volume-stats";
  std::ofstream(root / "clash" / "tool.json") << clash.dump();
  ProcessorRegistry registry;
  RegisterBuiltinProcessors(registry);
  const auto warnings = RegisterTools(registry, root.string(), "");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("bad/tool.json: /requirements/cpus:"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("clash/tool.json: /name: \"volume-stats\" is already a processor"), std::string::npos) << warnings[1];
  ASSERT_NE(registry.Find("demo-tool"), nullptr);
  EXPECT_EQ(ProcessorJson(registry.Get("demo-tool").Info())["kind"], "external");
  EXPECT_EQ(ProcessorJson(registry.Get("demo-tool").Info())["details"]["command"], (json{"python3", "{tool}/run.py"}));
  EXPECT_EQ(ProcessorJson(registry.Get("volume-stats").Info())["kind"], "native");
  EXPECT_THROW(RegisterTools(registry, (root / "missing").string(), ""), Error);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace procnode
