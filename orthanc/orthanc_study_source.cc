#include "orthanc/orthanc_study_source.h"

#include <nlohmann/json.hpp>

#include <cstdio>

#include "core/error.h"

namespace procnode {

namespace {

// A series as Orthanc describes it (GET /series/{id}, or one item of /studies/{id}/series).
SeriesRef SeriesFromJson(const nlohmann::json& item) {
  SeriesRef ref;
  ref.id = item.value("ID", "");
  const auto tags = item.value("MainDicomTags", nlohmann::json::object());
  ref.modality = tags.value("Modality", "");
  ref.produced_by_procnode = tags.value("Manufacturer", "") == kResultManufacturer;
  for (const auto& instance : item.value("Instances", nlohmann::json::array())) {
    ref.instance_ids.push_back(instance.get<std::string>());
  }
  return ref;
}

}  // namespace

std::vector<SeriesRef> OrthancStudySource::ListSeries(const std::string& study_id) {
  const auto answer = nlohmann::json::parse(rest_.Get("/studies/" + study_id + "/series"), nullptr, false);
  if (!answer.is_array()) throw Error(ErrorCode::kUnavailable, "study " + study_id + ": unexpected answer from Orthanc");
  std::vector<SeriesRef> series;
  for (const auto& item : answer) series.push_back(SeriesFromJson(item));
  return series;
}

SeriesRef OrthancStudySource::GetSeries(const std::string& series_id, std::string* parent_study) {
  const auto answer = nlohmann::json::parse(rest_.Get("/series/" + series_id), nullptr, false);
  if (!answer.is_object()) throw Error(ErrorCode::kUnavailable, "series " + series_id + ": unexpected answer from Orthanc");
  if (parent_study != nullptr) *parent_study = answer.value("ParentStudy", "");
  return SeriesFromJson(answer);
}

std::optional<std::map<uint32_t, std::string>> OrthancStudySource::InstanceAttributes(const std::string& instance_id) {
  const auto tags = nlohmann::json::parse(rest_.Get("/instances/" + instance_id + "/tags?short"), nullptr, false);
  if (!tags.is_object()) return std::nullopt;
  std::map<uint32_t, std::string> attributes;
  for (const auto& [key, value] : tags.items()) {
    if (key.size() != 9 || key[4] != ',') continue;  // "gggg,eeee"
    unsigned group = 0, element = 0;
    if (std::sscanf(key.c_str(), "%4x,%4x", &group, &element) != 2) continue;
    if (value.is_string()) attributes[group << 16 | element] = value.get<std::string>();  // sequences, binary: left out
  }
  return attributes;
}

std::string OrthancStudySource::InstanceMetadata(const std::string& instance_id, const std::string& name) {
  try {
    return rest_.Get("/instances/" + instance_id + "/metadata/" + name);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) return "";
    throw;
  }
}

std::string OrthancStudySource::FetchInstance(const std::string& instance_id) {
  return rest_.Get("/instances/" + instance_id + "/file");
}

std::string OrthancResultSink::Store(const std::string& dicom_bytes, const std::string&) {
  const auto answer = nlohmann::json::parse(rest_.Post("/instances", dicom_bytes), nullptr, false);
  if (!answer.is_object() || !answer.contains("ID")) {
    throw Error(ErrorCode::kUnavailable, "Orthanc did not accept the result: " + answer.dump());
  }
  return answer["ID"].get<std::string>();
}

}  // namespace procnode
