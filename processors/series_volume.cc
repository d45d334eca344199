#include "processors/series_volume.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "processors/dicom_image.h"
#include "processors/dicom_io.h"

namespace procnode {
namespace {

using Vec3 = std::array<double, 3>;

Vec3 Cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double Dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

std::string GetString(DcmDataset& ds, const DcmTagKey& tag) {
  OFString value;
  return ds.findAndGetOFStringArray(tag, value).good() ? std::string(value.c_str()) : std::string();
}

[[noreturn]] void Invalid(const std::string& name, const std::string& reason) {
  throw Error(ErrorCode::kInvalidInput, name + ": " + reason);
}

StudyIdentity IdentityOf(DcmDataset& ds, const std::string& name) {
  StudyIdentity id;
  id.specific_character_set = GetString(ds, DCM_SpecificCharacterSet);
  id.patient_name = GetString(ds, DCM_PatientName);
  id.patient_id = GetString(ds, DCM_PatientID);
  id.patient_birth_date = GetString(ds, DCM_PatientBirthDate);
  id.patient_sex = GetString(ds, DCM_PatientSex);
  id.study_instance_uid = GetString(ds, DCM_StudyInstanceUID);
  id.study_date = GetString(ds, DCM_StudyDate);
  id.study_time = GetString(ds, DCM_StudyTime);
  id.referring_physician_name = GetString(ds, DCM_ReferringPhysicianName);
  id.study_id = GetString(ds, DCM_StudyID);
  id.accession_number = GetString(ds, DCM_AccessionNumber);
  if (id.study_instance_uid.empty()) Invalid(name, "StudyInstanceUID missing");
  return id;
}

}  // namespace

StudyIdentity ReadStudyIdentity(StudySource& source, const std::string& instance_id) {
  const std::string name = "instance " + instance_id;
  auto file = ReadInstance(source, instance_id, name);
  return IdentityOf(*file->getDataset(), name);
}

const SeriesRef& LargestInputSeries(const std::vector<SeriesRef>& series) {
  const SeriesRef* best = nullptr;
  for (const auto& s : series) {
    if (s.produced_by_procnode || s.instance_ids.empty()) continue;
    if (best == nullptr || s.instance_ids.size() > best->instance_ids.size()) best = &s;
  }
  if (best == nullptr) throw Error(ErrorCode::kNotFound, "the study has no input series");
  return *best;
}

SeriesVolume LoadSeriesVolume(StudySource& source, const SeriesRef& series,
                              const LoadCallbacks& callbacks) {
  if (series.instance_ids.empty()) {
    throw Error(ErrorCode::kInvalidInput, "series " + series.id + ": no instances");
  }
  SeriesVolume result;
  std::vector<DicomImage> slices;
  const std::size_t total = series.instance_ids.size();
  for (std::size_t i = 0; i < total; ++i) {
    if (callbacks.cancelled && callbacks.cancelled()) {
      throw Error(ErrorCode::kCancelled, "series " + series.id + ": loading cancelled");
    }
    const std::string& id = series.instance_ids[i];
    const std::string name = "instance " + id;
    auto file = ReadInstance(source, id, name);
    if (i == 0) result.study = IdentityOf(*file->getDataset(), name);
    DicomImage decoded = DecodeDicomImage(*file->getDataset(), name);
    if (!slices.empty()) {
      const auto& first = slices.front();
      if (decoded.rows != first.rows || decoded.columns != first.columns) {
        Invalid(name, std::to_string(decoded.columns) + "x" + std::to_string(decoded.rows) +
                          " differs from the series' " + std::to_string(first.columns) + "x" +
                          std::to_string(first.rows) + " (first: " + first.name + ")");
      }
      if (decoded.orientation && first.orientation) {
        for (int k = 0; k < 6; ++k) {
          if (std::abs((*decoded.orientation)[k] - (*first.orientation)[k]) > 1e-3) {
            Invalid(name, "ImageOrientationPatient differs from " + first.name);
          }
        }
      }
    }
    slices.push_back(std::move(decoded));
    if (callbacks.progress) callbacks.progress(i + 1, total);
  }

  const DicomImage& first = slices.front();
  Volume& volume = result.volume;
  volume.modality = first.modality;
  volume.units = first.modality == "CT" ? "HU" : "";
  result.series_instance_uid = first.series_uid;
  volume.spacing = {first.pixel_spacing[1], first.pixel_spacing[0], 1.0};
  if (!first.has_pixel_spacing) result.warnings.push_back("PixelSpacing missing: 1 mm assumed");

  const bool geometric = std::all_of(slices.begin(), slices.end(), [](const DicomImage& s) {
    return s.position && s.orientation && s.frames == 1;
  });
  std::vector<double> keys(slices.size(), 0.0);
  if (geometric) {
    const auto& o = *first.orientation;
    volume.row_direction = {o[0], o[1], o[2]};
    volume.column_direction = {o[3], o[4], o[5]};
    volume.slice_direction = Cross(volume.row_direction, volume.column_direction);
    for (std::size_t i = 0; i < slices.size(); ++i) keys[i] = Dot(*slices[i].position, volume.slice_direction);
  } else {
    for (std::size_t i = 0; i < slices.size(); ++i) keys[i] = static_cast<double>(slices[i].instance_number);
    result.warnings.push_back(
        "slice positions unavailable (multi-frame or missing ImagePositionPatient): "
        "slices ordered by InstanceNumber, frames in stored order");
  }
  std::vector<std::size_t> order(slices.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });

  std::size_t frames = 0;
  for (const auto& s : slices) frames += static_cast<std::size_t>(s.frames);
  volume.dims = {static_cast<std::size_t>(first.columns), static_cast<std::size_t>(first.rows), frames};
  if (geometric) {
    volume.origin = *slices[order.front()].position;
    if (slices.size() > 1) {
      volume.spacing[2] = (keys[order.back()] - keys[order.front()]) / static_cast<double>(slices.size() - 1);
      if (volume.spacing[2] <= 0) {
        result.warnings.push_back("all slices share one position: slice spacing set to 1 mm");
        volume.spacing[2] = 1.0;
      }
    } else if (first.slice_thickness > 0) {
      volume.spacing[2] = first.slice_thickness;
    }
  } else if (first.slice_thickness > 0) {
    volume.spacing[2] = first.slice_thickness;
  }

  volume.voxels.reserve(volume.dims[0] * volume.dims[1] * frames);
  for (std::size_t index : order) {
    DicomImage& s = slices[index];
    const std::size_t count = s.SampleCount();
    for (std::size_t i = 0; i < count; ++i) {
      volume.voxels.push_back(static_cast<float>(static_cast<double>(s.Sample(i)) * s.slope + s.intercept));
    }
    SampleBuffer().swap(s.samples);  // keep the peak near one volume
    result.sources.push_back({s.sop_class_uid, s.sop_instance_uid});
  }
  return result;
}

}  // namespace procnode
