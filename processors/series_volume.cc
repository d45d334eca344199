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

std::optional<long> GetInt(DcmDataset& ds, const DcmTagKey& tag) {
  Uint16 u16 = 0;
  if (ds.findAndGetUint16(tag, u16).good()) return u16;
  Sint32 s32 = 0;
  if (ds.findAndGetSint32(tag, s32).good()) return s32;  // IS values
  return std::nullopt;
}

std::optional<double> GetDouble(DcmDataset& ds, const DcmTagKey& tag, unsigned long index = 0) {
  Float64 value = 0;
  if (ds.findAndGetFloat64(tag, value, index).good() && std::isfinite(value)) return value;
  return std::nullopt;
}

// One decoded instance: its frames as float slices, plus what sorting and checks need.
struct DecodedInstance {
  std::string name;
  long rows = 0, columns = 0, frames = 1;
  std::optional<Vec3> position;
  std::optional<std::array<double, 6>> orientation;
  std::array<double, 2> pixel_spacing{1, 1};  // row spacing, column spacing (PS3.3 10.7.1.3)
  bool has_pixel_spacing = false;
  double slice_thickness = 0;
  long instance_number = 0;
  std::string modality, series_uid, sop_class_uid, sop_instance_uid;
  std::vector<std::vector<float>> frame_voxels;
};

[[noreturn]] void Invalid(const std::string& name, const std::string& reason) {
  throw Error(ErrorCode::kInvalidInput, name + ": " + reason);
}

StudyIdentity IdentityOf(DcmDataset& ds, const std::string& name);

// Decodes one instance; fills `identity` from it when non-null.
DecodedInstance Decode(const std::string& bytes, const std::string& name, StudyIdentity* identity) {
  auto file = ReadDicomBuffer(bytes, name);
  DcmDataset& ds = *file->getDataset();
  if (identity != nullptr) *identity = IdentityOf(ds, name);
  DecodedInstance out;
  out.name = name;
  out.modality = GetString(ds, DCM_Modality);
  out.series_uid = GetString(ds, DCM_SeriesInstanceUID);
  out.sop_class_uid = GetString(ds, DCM_SOPClassUID);
  out.sop_instance_uid = GetString(ds, DCM_SOPInstanceUID);
  out.instance_number = GetInt(ds, DCM_InstanceNumber).value_or(0);
  out.slice_thickness = GetDouble(ds, DCM_SliceThickness).value_or(0);

  if (!ds.tagExists(DCM_PixelData)) Invalid(name, "no PixelData (7FE0,0010): not an image");
  const auto rows = GetInt(ds, DCM_Rows), columns = GetInt(ds, DCM_Columns);
  const auto bits_allocated = GetInt(ds, DCM_BitsAllocated);
  if (!rows || !columns || *rows <= 0 || *columns <= 0) Invalid(name, "Rows or Columns missing or zero");
  if (!bits_allocated) Invalid(name, "BitsAllocated missing");
  const long samples = GetInt(ds, DCM_SamplesPerPixel).value_or(1);
  if (samples != 1) {
    throw Error(ErrorCode::kUnsupported,
                name + ": SamplesPerPixel " + std::to_string(samples) + " (colour) is not a volume");
  }
  const long bits_stored = GetInt(ds, DCM_BitsStored).value_or(*bits_allocated);
  const long high_bit = GetInt(ds, DCM_HighBit).value_or(bits_stored - 1);
  const bool is_signed = GetInt(ds, DCM_PixelRepresentation).value_or(0) == 1;
  if (*bits_allocated != 8 && *bits_allocated != 16 && *bits_allocated != 32) {
    throw Error(ErrorCode::kUnsupported,
                name + ": BitsAllocated " + std::to_string(*bits_allocated) + " is not supported");
  }
  if (bits_stored <= 0 || bits_stored > *bits_allocated || high_bit < bits_stored - 1 ||
      high_bit >= *bits_allocated) {
    Invalid(name, "BitsStored " + std::to_string(bits_stored) + " / HighBit " +
                      std::to_string(high_bit) + " do not fit BitsAllocated " +
                      std::to_string(*bits_allocated));
  }
  out.rows = *rows;
  out.columns = *columns;
  {
    OFString frames_text;
    if (ds.findAndGetOFString(DCM_NumberOfFrames, frames_text).good()) {
      out.frames = std::atol(frames_text.c_str());
      if (out.frames <= 0) Invalid(name, "NumberOfFrames '" + std::string(frames_text.c_str()) + "'");
    }
  }

  const E_TransferSyntax xfer = ds.getOriginalXfer();
  if (DcmXfer(xfer).isEncapsulated()) {
    RegisterDecoders();
    const OFCondition status = ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    if (status.bad() || !ds.canWriteXfer(EXS_LittleEndianExplicit)) {
      throw Error(ErrorCode::kUnsupported,
                  name + ": transfer syntax " + std::string(DcmXfer(xfer).getXferName()) +
                      " cannot be decoded" + (status.bad() ? " (" + std::string(status.text()) + ")" : ""));
    }
  }

  const std::size_t per_frame = static_cast<std::size_t>(out.rows) * out.columns;
  const std::size_t expected = per_frame * out.frames;
  const double slope = GetDouble(ds, DCM_RescaleSlope).value_or(1.0);
  const double intercept = GetDouble(ds, DCM_RescaleIntercept).value_or(0.0);
  const unsigned shift = static_cast<unsigned>(high_bit + 1 - bits_stored);
  const uint64_t mask = (bits_stored >= 32) ? 0xffffffffull : ((1ull << bits_stored) - 1);
  auto to_modality = [&](uint32_t word) {
    const uint64_t raw = (static_cast<uint64_t>(word) >> shift) & mask;
    int64_t value = static_cast<int64_t>(raw);
    if (is_signed && (raw >> (bits_stored - 1)) & 1) value -= static_cast<int64_t>(mask) + 1;
    return static_cast<float>(value * slope + intercept);
  };

  out.frame_voxels.assign(out.frames, std::vector<float>(per_frame));
  auto length_error = [&](unsigned long have, int bytes_per_sample) {
    std::ostringstream msg;
    msg << "PixelData holds " << have * bytes_per_sample << " bytes, expected "
        << expected * (*bits_allocated / 8) << " (" << out.columns << "x" << out.rows << "x"
        << out.frames << " at " << *bits_allocated << " bits)";
    Invalid(name, msg.str());
  };
  if (*bits_allocated == 16) {
    const Uint16* words = nullptr;
    unsigned long count = 0;
    if (ds.findAndGetUint16Array(DCM_PixelData, words, &count).bad() || words == nullptr)
      Invalid(name, "PixelData unreadable");
    if (count < expected) length_error(count, 2);
    for (long f = 0; f < out.frames; ++f)
      for (std::size_t i = 0; i < per_frame; ++i) out.frame_voxels[f][i] = to_modality(words[f * per_frame + i]);
  } else {
    const Uint8* bytes_ptr = nullptr;
    unsigned long count = 0;
    if (ds.findAndGetUint8Array(DCM_PixelData, bytes_ptr, &count).bad() || bytes_ptr == nullptr)
      Invalid(name, "PixelData unreadable");
    const int width = static_cast<int>(*bits_allocated / 8);
    if (count / width < expected) length_error(count / width, width);
    for (long f = 0; f < out.frames; ++f) {
      for (std::size_t i = 0; i < per_frame; ++i) {
        const std::size_t k = (f * per_frame + i) * width;
        uint32_t word = bytes_ptr[k];
        if (width == 4) {
          word |= static_cast<uint32_t>(bytes_ptr[k + 1]) << 8 |
                  static_cast<uint32_t>(bytes_ptr[k + 2]) << 16 |
                  static_cast<uint32_t>(bytes_ptr[k + 3]) << 24;
        }
        out.frame_voxels[f][i] = to_modality(word);
      }
    }
  }

  if (auto x = GetDouble(ds, DCM_ImagePositionPatient, 0)) {
    auto y = GetDouble(ds, DCM_ImagePositionPatient, 1), z = GetDouble(ds, DCM_ImagePositionPatient, 2);
    if (y && z) out.position = Vec3{*x, *y, *z};
  }
  std::array<double, 6> iop{};
  bool has_iop = true;
  for (unsigned long i = 0; i < 6 && has_iop; ++i) {
    auto v = GetDouble(ds, DCM_ImageOrientationPatient, i);
    has_iop = v.has_value();
    if (v) iop[i] = *v;
  }
  if (has_iop) out.orientation = iop;
  auto row_spacing = GetDouble(ds, DCM_PixelSpacing, 0), column_spacing = GetDouble(ds, DCM_PixelSpacing, 1);
  if (row_spacing && column_spacing && *row_spacing > 0 && *column_spacing > 0) {
    out.pixel_spacing = {*row_spacing, *column_spacing};
    out.has_pixel_spacing = true;
  }
  return out;
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
  std::vector<DecodedInstance> slices;  // one entry per frame after expansion below
  const std::size_t total = series.instance_ids.size();
  for (std::size_t i = 0; i < total; ++i) {
    if (callbacks.cancelled && callbacks.cancelled()) {
      throw Error(ErrorCode::kCancelled, "series " + series.id + ": loading cancelled");
    }
    const std::string& id = series.instance_ids[i];
    const std::string bytes = source.FetchInstance(id);
    const std::string name = "instance " + id;
    DecodedInstance decoded = Decode(bytes, name, i == 0 ? &result.study : nullptr);
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

  const DecodedInstance& first = slices.front();
  Volume& volume = result.volume;
  volume.modality = first.modality;
  volume.units = first.modality == "CT" ? "HU" : "";
  result.series_instance_uid = first.series_uid;
  volume.spacing = {first.pixel_spacing[1], first.pixel_spacing[0], 1.0};
  if (!first.has_pixel_spacing) result.warnings.push_back("PixelSpacing missing: 1 mm assumed");

  const bool geometric = std::all_of(slices.begin(), slices.end(), [](const DecodedInstance& s) {
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

  const std::size_t per_frame = volume.dims[0] * volume.dims[1];
  volume.voxels.reserve(per_frame * frames);
  for (std::size_t index : order) {
    DecodedInstance& s = slices[index];
    for (auto& frame : s.frame_voxels) {
      volume.voxels.insert(volume.voxels.end(), frame.begin(), frame.end());
      std::vector<float>().swap(frame);  // keep the peak near one volume
    }
    result.sources.push_back({s.sop_class_uid, s.sop_instance_uid});
  }
  return result;
}

}  // namespace procnode
