#include "plugin/orthanc_adapters.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "plugin/orthanc_api.h"

namespace procnode {

std::vector<SeriesRef> OrthancStudySource::ListSeries(const std::string& study_id) {
  const auto answer = nlohmann::json::parse(orthanc::RestGet("/studies/" + study_id + "/series"), nullptr, false);
  if (!answer.is_array()) throw Error(ErrorCode::kUnavailable, "study " + study_id + ": unexpected answer from Orthanc");
  std::vector<SeriesRef> series;
  for (const auto& item : answer) {
    SeriesRef ref;
    ref.id = item.value("ID", "");
    const auto tags = item.value("MainDicomTags", nlohmann::json::object());
    ref.modality = tags.value("Modality", "");
    ref.produced_by_procnode = tags.value("Manufacturer", "") == kResultManufacturer;
    for (const auto& instance : item.value("Instances", nlohmann::json::array())) {
      ref.instance_ids.push_back(instance.get<std::string>());
    }
    series.push_back(std::move(ref));
  }
  return series;
}

std::string OrthancStudySource::FetchInstance(const std::string& instance_id) {
  return orthanc::RestGet("/instances/" + instance_id + "/file");
}

std::string OrthancResultSink::Store(const std::string& dicom_bytes, const std::string&) {
  const auto answer = nlohmann::json::parse(orthanc::RestPost("/instances", dicom_bytes), nullptr, false);
  if (!answer.is_object() || !answer.contains("ID")) {
    throw Error(ErrorCode::kUnavailable, "Orthanc did not accept the result: " + answer.dump());
  }
  return answer["ID"].get<std::string>();
}

}  // namespace procnode
