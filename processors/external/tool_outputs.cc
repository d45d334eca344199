#include "processors/external/tool_outputs.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/coded.h"
#include "core/digest.h"
#include "core/error.h"
#include "nifti/nifti1.h"

namespace procnode {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kMaxJsonBytes = 4 << 20;
constexpr std::size_t kMaxText = 2000;
constexpr std::size_t kMaxMeasurements = 10000;
constexpr std::size_t kMaxSections = 64;
constexpr std::size_t kMaxRows = 2000;

// Default segment concepts for a label without codes: CID 7150 "Tissue" / CID 7151 "Tissue".
const Code kTissue{"85756007", "SCT", "Tissue"};

class Reader {
 public:
  Reader(const ToolManifest& manifest, std::string folder) : manifest_(manifest), folder_(std::move(folder)) {}

  [[noreturn]] void Fail(const std::string& file, const std::string& reason) const {
    throw Error(ErrorCode::kProcessorFailed, "tool " + manifest_.name + ": " + file + ": " + reason);
  }

  std::string Path(const std::string& file) const { return (fs::path(folder_) / file).string(); }

  bool Has(const std::string& file) const {
    std::error_code ec;
    return fs::is_regular_file(fs::symlink_status(Path(file), ec));
  }

  std::string Bytes(const std::string& file, std::size_t limit) const {
    std::error_code ec;
    const auto status = fs::symlink_status(Path(file), ec);
    if (fs::is_symlink(status)) Fail(file, "is a symbolic link (outputs are plain files)");
    if (!fs::is_regular_file(status)) Fail(file, "missing (the manifest declares it)");
    const auto size = fs::file_size(Path(file), ec);
    if (ec || size > limit) Fail(file, "larger than " + std::to_string(limit >> 20) + " MiB");
    std::ifstream in(Path(file), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  json Json(const std::string& file) const {
    const std::string text = Bytes(file, kMaxJsonBytes);
    try {
      return json::parse(text);
    } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large for a double
      Fail(file, std::string("not JSON: ") + e.what());
    }
  }

  // The list under `key` of a JSON output shaped {"key": [...]}, at most `max` items.
  json List(const std::string& file, const std::string& key, std::size_t max, const std::string& shape) const {
    json root = Json(file);
    if (!root.is_object() || !root.contains(key) || !root[key].is_array()) Fail(file, "must be " + shape);
    if (root[key].size() > max) Fail(file, "more than " + std::to_string(max) + " " + key);
    return std::move(root[key]);
  }

  std::string Text(const json& value, const std::string& file, const std::string& where, std::size_t max = kMaxText) const {
    if (!value.is_string()) Fail(file, where + ": must be a string");
    std::string text = value.get<std::string>();
    if (text.size() > max) Fail(file, where + ": longer than " + std::to_string(max) + " characters");
    for (unsigned char c : text) {
      if (c < 0x20 && c != '\n' && c != '\t') Fail(file, where + ": holds control characters");
    }
    return text;
  }

  Code ReadCode(const json& value, const std::string& file, const std::string& where) const {
    if (!value.is_object()) Fail(file, where + ": must be {\"value\", \"scheme\", \"meaning\"}");
    Code code{Text(value.value("value", json()), file, where + ".value", 16),
              Text(value.value("scheme", json()), file, where + ".scheme", 16),
              Text(value.value("meaning", json()), file, where + ".meaning", 64)};
    static const std::set<std::string> kSchemes{"SCT", "DCM", "LN", kPrivateCodingScheme};
    if (!kSchemes.contains(code.scheme)) Fail(file, where + ".scheme: must be SCT, DCM, LN or " + kPrivateCodingScheme);
    if (code.value.empty() || code.meaning.empty()) Fail(file, where + ": value and meaning must not be empty");
    return code;
  }

  // A NIfTI output on the input's grid: same dimensions, and an affine equal within 0.01 mm.
  NiftiImage Image(const std::string& file, const Volume& input) const {
    NiftiImage image;
    try {
      image = ParseNiftiBytes(Bytes(file, manifest_.max_output_bytes), file, input.VoxelCount() * 8 + 65536);
    } catch (const Error& e) {
      Fail(file, e.what());
    }
    const std::array<int64_t, 3> want{static_cast<int64_t>(input.dims[0]), static_cast<int64_t>(input.dims[1]),
                                      static_cast<int64_t>(input.dims[2])};
    if (image.dims[0] != want[0] || image.dims[1] != want[1] || image.dims[2] != want[2] || image.dims[3] > 1) {
      Fail(file, "grid " + std::to_string(image.dims[0]) + "x" + std::to_string(image.dims[1]) + "x" +
                     std::to_string(image.dims[2]) + (image.dims[3] > 1 ? "x" + std::to_string(image.dims[3]) : "") +
                     " is not the input's " + std::to_string(want[0]) + "x" + std::to_string(want[1]) + "x" +
                     std::to_string(want[2]));
    }
    const auto reference = VolumeAffine(input);
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 4; ++c) {
        if (!(std::abs(image.srow[r][c] - reference[r][c]) <= 0.01)) {
          Fail(file, "affine differs from the input's (row " + std::to_string(r) + ", column " + std::to_string(c) + ": " +
                         std::to_string(image.srow[r][c]) + " instead of " + std::to_string(reference[r][c]) + ")");
        }
      }
    }
    return image;
  }

  const ToolManifest& manifest() const { return manifest_; }

 private:
  const ToolManifest& manifest_;
  std::string folder_;
};

std::array<int, 3> Colour(const Reader& reader, const json& value, const std::string& where) {
  if (!value.is_array() || value.size() != 3) reader.Fail("labels.json", where + ": must be [red, green, blue]");
  std::array<int, 3> rgb{};
  for (int i = 0; i < 3; ++i) {
    if (!value[i].is_number_integer() || value[i].get<int>() < 0 || value[i].get<int>() > 255) {
      reader.Fail("labels.json", where + ": each channel an integer 0-255");
    }
    rgb[i] = value[i].get<int>();
  }
  return rgb;
}

// A colour per label where the tool gave none: distinct hues.
std::array<int, 3> DefaultColour(int index) {
  static const std::array<std::array<int, 3>, 8> kColours{{{230, 25, 75}, {60, 180, 75}, {0, 130, 200}, {245, 130, 48},
                                                           {145, 30, 180}, {70, 240, 240}, {240, 50, 230}, {210, 245, 60}}};
  return kColours[static_cast<std::size_t>(index) % kColours.size()];
}

void ReadLabels(const Reader& reader, const Volume& input, ProcessorOutput& out) {
  const std::string file = reader.Has("labels.nii.gz") ? "labels.nii.gz" : reader.Has("labels.nii") ? "labels.nii" : "labels.nii.gz";
  const NiftiImage image = reader.Image(file, input);
  const json names = reader.Json("labels.json");
  if (!names.is_object() || names.empty()) reader.Fail("labels.json", "must map label values to names: {\"1\": \"Foreground\"}");
  std::map<int, ResultSegment> segments;
  int index = 0;
  for (const auto& [key, entry] : names.items()) {
    char* end = nullptr;
    const long value = std::strtol(key.c_str(), &end, 10);
    if (key.empty() || *end != '\0' || value < 1 || value > 255) reader.Fail("labels.json", key + ": label values are 1-255");
    ResultSegment s;
    s.label_values = {static_cast<int>(value)};
    s.category = kTissue;
    s.type = kTissue;
    s.rgb = DefaultColour(index++);
    if (entry.is_string()) {
      s.label = reader.Text(entry, "labels.json", key, 64);
    } else if (entry.is_object()) {
      for (const auto& [field, ignored] : entry.items()) {
        if (field != "name" && field != "code" && field != "category" && field != "colour") {
          reader.Fail("labels.json", key + "." + field + ": unknown (name, code, category, colour)");
        }
      }
      s.label = reader.Text(entry.value("name", json()), "labels.json", key + ".name", 64);
      if (entry.contains("code")) s.type = reader.ReadCode(entry["code"], "labels.json", key + ".code");
      if (entry.contains("category")) s.category = reader.ReadCode(entry["category"], "labels.json", key + ".category");
      if (entry.contains("colour")) s.rgb = Colour(reader, entry["colour"], key + ".colour");
    } else {
      reader.Fail("labels.json", key + ": a name, or {\"name\", \"code\", \"category\", \"colour\"}");
    }
    if (s.label.empty()) reader.Fail("labels.json", key + ": the name must not be empty");
    s.finding = s.type;
    segments[static_cast<int>(value)] = std::move(s);
  }
  // The voxels: integers 0-255 of a declared label, whatever integer or float type holds them.
  const Volume labels = VolumeFromNifti(image);
  out.labels.resize(labels.voxels.size());
  std::vector<std::size_t> counts(256, 0);
  for (std::size_t i = 0; i < labels.voxels.size(); ++i) {
    const float v = labels.voxels[i];
    if (!(v >= 0 && v <= 255) || v != std::floor(v)) {
      reader.Fail(file, "voxel " + std::to_string(i) + " holds " + (std::isnan(v) ? std::string("NaN") : std::to_string(v)) +
                            ": labels are integers 0-255");
    }
    const int label = static_cast<int>(v);
    if (label != 0 && !segments.contains(label)) {
      reader.Fail(file, "label value " + std::to_string(label) + " is not declared in labels.json");
    }
    out.labels[i] = static_cast<uint8_t>(label);
    ++counts[static_cast<std::size_t>(label)];
  }
  for (auto& [value, segment] : segments) {
    out.label_names.push_back({value, segment.label});
    if (counts[static_cast<std::size_t>(value)] == 0) {
      out.warnings.push_back("tool " + reader.manifest().name + ": label " + std::to_string(value) + " (" + segment.label +
                             ") is declared but no voxel has it");
    }
    out.segments.push_back(segment);
  }
}

// A measurement's concept: the tool's code, or a local one (99PROCNODE) derived from its name.
Code Concept(const std::string& tool, const std::string& name) {
  return {"M" + Sha256Hex(tool + "\n" + name).substr(0, 15), kPrivateCodingScheme, name.substr(0, 64)};
}

void ReadMeasurements(const Reader& reader, ProcessorOutput& out) {
  const std::string file = "measurements.json";
  const json list = reader.List(file, "measurements", kMaxMeasurements,
                                "{\"measurements\": [{\"name\", \"value\", \"unit\", \"label\"?, \"code\"?}]}");
  json global = json::object();
  json by_label = json::object();
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    const std::string at = "measurements[" + std::to_string(i) + "]";
    if (!m.is_object()) reader.Fail(file, at + ": must be an object");
    for (const auto& [field, ignored] : m.items()) {
      static const std::set<std::string> kFields{"name", "value", "unit", "label", "code", "derivation"};
      if (!kFields.contains(field)) reader.Fail(file, at + "." + field + ": unknown (name, value, unit, label, code, derivation)");
    }
    const std::string name = reader.Text(m.value("name", json()), file, at + ".name", 64);
    if (name.empty()) reader.Fail(file, at + ".name: must not be empty");
    if (!m.contains("value") || !m["value"].is_number() || !std::isfinite(m["value"].get<double>())) {
      reader.Fail(file, at + ".value: must be a finite number");
    }
    const double value = m["value"].get<double>();
    const std::string unit = reader.Text(m.value("unit", json()), file, at + ".unit", 16);
    if (unit.empty() || unit.find_first_of(" \t\n") != std::string::npos) {
      reader.Fail(file, at + ".unit: a UCUM code such as \"mm3\", \"[hnsf'U]\" or \"1\"");
    }
    CodedMeasurement coded{.concept_name = m.contains("code") ? reader.ReadCode(m["code"], file, at + ".code")
                                                              : Concept(reader.manifest().name, name),
                           .value = value,
                           .unit = {unit, "UCUM", unit}};
    if (m.contains("derivation")) coded.derivation = reader.ReadCode(m["derivation"], file, at + ".derivation");
    const json recorded{{"value", value}, {"unit", unit}};
    if (!m.contains("label")) {
      global[name] = recorded;
      continue;
    }
    if (!m["label"].is_number_integer()) reader.Fail(file, at + ".label: must be a label value");
    const int label = m["label"].get<int>();
    const auto segment = std::find_if(out.segments.begin(), out.segments.end(),
                                      [&](const ResultSegment& s) { return s.label_values.front() == label; });
    if (segment == out.segments.end()) {
      reader.Fail(file, at + ".label: " + std::to_string(label) + " is not a label of labels.json" +
                            (out.segments.empty() ? " (the tool wrote no labels)" : ""));
    }
    segment->measurements.push_back(coded);
    by_label[segment->label][name] = recorded;
  }
  out.measurements["global"] = global;
  out.measurements["labels"] = by_label;
}

void ReadReport(const Reader& reader, ProcessorOutput& out) {
  const std::string file = "report.json";
  const json sections = reader.List(file, "sections", kMaxSections,
                                    "{\"sections\": [{\"heading\", \"paragraph\"?, \"rows\"?, \"table\"?}]}");
  std::size_t rows_seen = 0;
  auto count_rows = [&](std::size_t n) {
    rows_seen += n;
    if (rows_seen > kMaxRows) reader.Fail(file, "more than " + std::to_string(kMaxRows) + " rows in all");
  };
  for (std::size_t i = 0; i < sections.size(); ++i) {
    const json& s = sections[i];
    const std::string at = "sections[" + std::to_string(i) + "]";
    if (!s.is_object()) reader.Fail(file, at + ": must be an object");
    for (const auto& [field, ignored] : s.items()) {
      if (field != "heading" && field != "paragraph" && field != "rows" && field != "table") {
        reader.Fail(file, at + "." + field + ": unknown (heading, paragraph, rows, table)");
      }
    }
    ReportSection section;
    section.heading = reader.Text(s.value("heading", json()), file, at + ".heading", 120);
    if (s.contains("paragraph")) section.paragraph = reader.Text(s["paragraph"], file, at + ".paragraph", 20000);
    if (s.contains("rows")) {
      if (!s["rows"].is_array()) reader.Fail(file, at + ".rows: must be a list of [label, value]");
      count_rows(s["rows"].size());
      for (std::size_t r = 0; r < s["rows"].size(); ++r) {
        const json& row = s["rows"][r];
        const std::string rat = at + ".rows[" + std::to_string(r) + "]";
        if (!row.is_array() || row.size() != 2) reader.Fail(file, rat + ": must be [label, value]");
        section.rows.push_back({reader.Text(row[0], file, rat + "[0]", 200), reader.Text(row[1], file, rat + "[1]", 200)});
      }
    }
    if (s.contains("table")) {
      const json& t = s["table"];
      if (!t.is_object() || !t.contains("header") || !t["header"].is_array() || !t.contains("rows") || !t["rows"].is_array()) {
        reader.Fail(file, at + ".table: must be {\"header\": [...], \"rows\": [[...]]}");
      }
      const std::size_t columns = t["header"].size();
      if (columns == 0 || columns > 12) reader.Fail(file, at + ".table.header: 1 to 12 columns");
      for (std::size_t c = 0; c < columns; ++c) {
        section.table.header.push_back(reader.Text(t["header"][c], file, at + ".table.header[" + std::to_string(c) + "]", 100));
      }
      count_rows(t["rows"].size());
      for (std::size_t r = 0; r < t["rows"].size(); ++r) {
        const json& row = t["rows"][r];
        const std::string rat = at + ".table.rows[" + std::to_string(r) + "]";
        if (!row.is_array() || row.size() != columns) reader.Fail(file, rat + ": must have " + std::to_string(columns) + " cells");
        std::vector<std::string> cells;
        for (std::size_t c = 0; c < columns; ++c) cells.push_back(reader.Text(row[c], file, rat + "[" + std::to_string(c) + "]", 200));
        section.table.rows.push_back(std::move(cells));
      }
    }
    if (section.heading.empty()) reader.Fail(file, at + ".heading: must not be empty");
    out.report.push_back(std::move(section));
  }
}

// A derived image, checked (grid, no NaN) and written again by procnode's NIfTI writer, so no
// header text or extension of the tool's leaves with it.
void ReadDerived(const Reader& reader, const std::string& file, const Volume& input, ProcessorOutput& out) {
  NiftiImage image = reader.Image(file, input);
  const Volume values = VolumeFromNifti(image);
  for (std::size_t i = 0; i < values.voxels.size(); ++i) {
    if (!std::isfinite(values.voxels[i])) reader.Fail(file, "voxel " + std::to_string(i) + " is not a finite number");
  }
  image.descrip = "procnode derived: " + reader.manifest().name;
  image.descrip.resize(std::min<std::size_t>(image.descrip.size(), 79));
  out.files.push_back({file.ends_with(".gz") ? file : file + ".gz", NiftiFileBytes(image, true),
                       "derived image by " + reader.manifest().name + " " + reader.manifest().version});
  // Also a derived image series where the rule asks for one ("results": [..., "derived"]).
  std::string name = file.substr(0, file.find('.'));
  out.derived.push_back({.name = name,
                         .series_description = reader.manifest().name + " " + name,
                         .derivation_description = "derived image " + file + " by external tool " + reader.manifest().name + " " +
                                                   reader.manifest().version,
                         .voxels = values.voxels});
}

}  // namespace

ProcessorOutput ReadToolOutputs(const std::string& folder, const ToolManifest& manifest, const Volume& input) {
  const Reader reader(manifest, folder);
  ProcessorOutput out;
  std::set<std::string> declared;
  if (manifest.labels) declared.insert({"labels.nii.gz", "labels.nii", "labels.json"});
  if (manifest.measurements) declared.insert("measurements.json");
  if (manifest.report) declared.insert("report.json");
  declared.insert(manifest.derived.begin(), manifest.derived.end());
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!declared.contains(name)) {
      std::string shown = name.substr(0, 64);
      for (char& c : shown) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
      }
      out.warnings.push_back("tool " + manifest.name + ": undeclared output left out: " + shown);
    }
  }
  if (manifest.labels) ReadLabels(reader, input, out);
  if (manifest.measurements) ReadMeasurements(reader, out);
  if (manifest.report) ReadReport(reader, out);
  for (const auto& file : manifest.derived) ReadDerived(reader, file, input, out);
  return out;
}

}  // namespace procnode
