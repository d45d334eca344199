#include "nifti/series_to_nifti.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/parallel.h"
#include "core/text.h"
#include "core/version.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "volume/geometry.h"
#include "volume/series_slices.h"

namespace procnode {
namespace {

// dcm2niix's vendor names in the sidecar.
std::string VendorName(const std::string& manufacturer) {
  const std::string upper = UpperCase(manufacturer);
  if (upper.find("SIEMENS") != std::string::npos) return "Siemens";
  if (upper.find("PHILIPS") != std::string::npos) return "Philips";
  if (upper.rfind("GE", 0) == 0) return "GE";
  if (upper.find("CANON") != std::string::npos || upper.find("TOSHIBA") != std::string::npos) return "Canon";
  if (upper.find("HITACHI") != std::string::npos) return "Hitachi";
  if (upper.find("UIH") != std::string::npos || upper.find("UNITED IMAGING") != std::string::npos) return "UIH";
  return manufacturer;
}

enum class Kind { kText, kNumber, kInteger, kMsToSeconds, kTextArray, kNumberArray };

struct SidecarField {
  uint16_t group, element;
  const char* key;
  Kind kind;
};

// Acquisition parameters only (dcm2niix's names). Identity, dates, times, institution, station,
// serial number and free-text comments are deliberately absent.
constexpr SidecarField kSidecarFields[] = {
    {0x0008, 0x0060, "Modality", Kind::kText},
    {0x0018, 0x0087, "MagneticFieldStrength", Kind::kNumber},
    {0x0018, 0x0084, "ImagingFrequency", Kind::kNumber},
    {0x0008, 0x0070, "Manufacturer", Kind::kText},
    {0x0008, 0x1090, "ManufacturersModelName", Kind::kText},
    {0x0018, 0x0015, "BodyPartExamined", Kind::kText},
    {0x0018, 0x5100, "PatientPosition", Kind::kText},
    {0x0018, 0x1020, "SoftwareVersions", Kind::kText},
    {0x0018, 0x0023, "MRAcquisitionType", Kind::kText},
    {0x0008, 0x103E, "SeriesDescription", Kind::kText},
    {0x0018, 0x1030, "ProtocolName", Kind::kText},
    {0x0018, 0x0020, "ScanningSequence", Kind::kText},
    {0x0018, 0x0021, "SequenceVariant", Kind::kText},
    {0x0018, 0x0022, "ScanOptions", Kind::kText},
    {0x0018, 0x0024, "SequenceName", Kind::kText},
    {0x0008, 0x0008, "ImageType", Kind::kTextArray},
    {0x0020, 0x0011, "SeriesNumber", Kind::kInteger},
    {0x0020, 0x0012, "AcquisitionNumber", Kind::kInteger},
    {0x0018, 0x1210, "ConvolutionKernel", Kind::kText},
    {0x0018, 0x1150, "ExposureTime", Kind::kMsToSeconds},
    {0x0018, 0x1151, "XRayTubeCurrent", Kind::kNumber},
    {0x0018, 0x1152, "XRayExposure", Kind::kNumber},
    {0x0018, 0x0050, "SliceThickness", Kind::kNumber},
    {0x0018, 0x0088, "SpacingBetweenSlices", Kind::kNumber},
    {0x0018, 0x1316, "SAR", Kind::kNumber},
    {0x0018, 0x0081, "EchoTime", Kind::kMsToSeconds},
    {0x0018, 0x0080, "RepetitionTime", Kind::kMsToSeconds},
    {0x0018, 0x0082, "InversionTime", Kind::kMsToSeconds},
    {0x0018, 0x1314, "FlipAngle", Kind::kNumber},
    {0x0018, 0x0095, "PixelBandwidth", Kind::kNumber},
    {0x0020, 0x0037, "ImageOrientationPatientDICOM", Kind::kNumberArray},
    {0x0018, 0x1312, "InPlanePhaseEncodingDirectionDICOM", Kind::kText},
};

nlohmann::json Sidecar(DcmDataset& ds) {
  nlohmann::json sidecar = nlohmann::json::object();
  for (const auto& field : kSidecarFields) {
    const std::string text = DicomString(ds, field.group, field.element);
    if (text.empty()) continue;
    switch (field.kind) {
      case Kind::kText:
        sidecar[field.key] = field.group == 0x0008 && field.element == 0x0070 ? VendorName(text) : text;
        break;
      case Kind::kNumber:
        if (auto v = DicomNumber(ds, field.group, field.element)) sidecar[field.key] = *v;
        break;
      case Kind::kInteger:
        if (auto v = DicomNumber(ds, field.group, field.element)) sidecar[field.key] = static_cast<long>(std::lround(*v));
        break;
      case Kind::kMsToSeconds:
        if (auto v = DicomNumber(ds, field.group, field.element)) sidecar[field.key] = *v / 1000.0;
        break;
      case Kind::kTextArray: {
        sidecar[field.key] = Split(text, '\\');
        break;
      }
      case Kind::kNumberArray: {
        nlohmann::json values = nlohmann::json::array();
        for (unsigned long i = 0;; ++i) {
          auto v = DicomNumber(ds, field.group, field.element, i);
          if (!v) break;
          values.push_back(*v);
        }
        sidecar[field.key] = values;
        break;
      }
    }
  }
  sidecar["ConversionSoftware"] = "procnode";
  sidecar["ConversionSoftwareVersion"] = kVersion;
  return sidecar;
}

// Applies `r` to the header (dims, pixdim, affine); the voxels are placed by the caller.
void ReorientHeader(NiftiImage& image, const Reorientation& r) {
  const Affine m = image.srow;
  const auto in_dims = image.dims;
  const auto in_pixdim = image.pixdim;
  for (int row = 0; row < 3; ++row) image.srow[row][3] = m[row][3];
  for (int w = 0; w < 3; ++w) {
    const int a = r.axis_of_world[w];
    for (int row = 0; row < 3; ++row) {
      image.srow[row][w] = r.flip[w] ? -m[row][a] : m[row][a];
      if (r.flip[w]) image.srow[row][3] += m[row][a] * static_cast<double>(in_dims[a] - 1);
    }
    image.pixdim[w] = in_pixdim[a];
    image.dims[w] = in_dims[a];
  }
}

// NIfTI slice_code from the slices' acquisition times, in NIfTI slice order (NIfTI-1 slice codes:
// 1 sequential increasing, 2 decreasing, 3/5 alternating increasing from slice 0/1, 4/6 decreasing).
uint8_t SliceCode(const std::vector<double>& times) {
  const std::size_t n = times.size();
  if (n < 2) return 0;
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return times[a] < times[b]; });
  auto matches = [&](auto expected) {
    for (std::size_t i = 0; i < n; ++i) {
      if (order[i] != expected(i)) return false;
    }
    return true;
  };
  const std::size_t half_even = (n + 1) / 2, half_odd = n / 2;
  if (matches([](std::size_t i) { return i; })) return 1;
  if (matches([&](std::size_t i) { return n - 1 - i; })) return 2;
  if (matches([&](std::size_t i) { return i < half_even ? 2 * i : 2 * (i - half_even) + 1; })) return 3;
  if (matches([&](std::size_t i) { return i < half_odd ? 2 * i + 1 : 2 * (i - half_odd); })) return 5;
  if (matches([&](std::size_t i) { return n - 1 - (i < half_even ? 2 * i : 2 * (i - half_even) + 1); })) return 4;
  if (matches([&](std::size_t i) { return n - 1 - (i < half_odd ? 2 * i + 1 : 2 * (i - half_odd)); })) return 6;
  return 0;
}

// Places slices in the output, rotated as `step` and `base` say: each slice is read (when
// deferred), made float (`to_float`), copied to its voxels and freed, in runs of consecutive
// slices per thread, so at most a few slices are held beside the output (a deferred 3D
// acquisition costs one volume of memory, not three: decoded, assembled, rotated). `order` lists
// the slices in output order (slab k of the acquired grid, volume after volume); `step` is the
// output index step per acquired axis (column, row counted from the bottom, slab) and `base` the
// output index of acquired voxel (0, 0, 0).
template <typename T>
void PlaceSlices(std::vector<Slice>& slices, const std::vector<std::size_t>& order, const SeriesInfo& info,
                 const std::array<int64_t, 3>& step, int64_t base, int64_t columns, int64_t rows, bool to_float,
                 char* output) {
  T* out = reinterpret_cast<T*>(output);
  const std::size_t positions = order.size();
  const std::size_t slice_bytes = static_cast<std::size_t>(columns * rows) * sizeof(T);
  // Where slabs run along the output rows, a run of them fills whole cache lines; otherwise each
  // slice is written alone.
  const std::size_t run =
      std::abs(step[2]) == 1 ? std::clamp<std::size_t>((2u << 20) / std::max<std::size_t>(slice_bytes, 1), 4, 32) : 1;
  const std::size_t threads = std::min<std::size_t>(DefaultParallelism(), (positions + run - 1) / run);
  ParallelFor(threads, [&](std::size_t t) {
    // Each thread takes one contiguous share of the positions, so threads write far apart.
    const std::size_t first = positions * t / threads, last = positions * (t + 1) / threads;
    std::array<const T*, 32> source{};
    for (std::size_t k0 = first; k0 < last; k0 += run) {
      const std::size_t k1 = std::min(last, k0 + run);
      for (std::size_t k = k0; k < k1; ++k) {
        Slice& slice = slices[order[k]];
        if (slice.deferred) info.load_pixels(slice);
        if (to_float) ToModalityFloat(slice.image);
        source[k - k0] = reinterpret_cast<const T*>(slice.image.samples.data());
      }
      const int64_t origin = base + static_cast<int64_t>(k0) * step[2];
      if (std::abs(step[2]) == 1) {  // positions run along the output rows: innermost
        for (int64_t j = 0; j < rows; ++j) {
          const int64_t r = (rows - 1 - j) * columns;
          for (int64_t i = 0; i < columns; ++i) {
            int64_t target = origin + i * step[0] + j * step[1];
            for (std::size_t k = 0; k < k1 - k0; ++k, target += step[2]) out[target] = source[k][r + i];
          }
        }
      } else if (std::abs(step[1]) == 1) {  // image columns run along the output rows
        for (std::size_t k = 0; k < k1 - k0; ++k) {
          for (int64_t i = 0; i < columns; ++i) {
            int64_t target = origin + static_cast<int64_t>(k) * step[2] + i * step[0];
            for (int64_t j = 0; j < rows; ++j, target += step[1]) out[target] = source[k][(rows - 1 - j) * columns + i];
          }
        }
      } else {
        for (std::size_t k = 0; k < k1 - k0; ++k) {
          for (int64_t j = 0; j < rows; ++j) {
            int64_t target = origin + static_cast<int64_t>(k) * step[2] + j * step[1];
            const T* row = source[k] + (rows - 1 - j) * columns;
            if (step[0] == 1) {
              std::memcpy(out + target, row, static_cast<std::size_t>(columns) * sizeof(T));
            } else {
              for (int64_t i = 0; i < columns; ++i, target += step[0]) out[target] = row[i];
            }
          }
        }
      }
      for (std::size_t k = k0; k < k1; ++k) SampleBuffer().swap(slices[order[k]].image.samples);
    }
  });
}

// One NIfTI image (and its sidecar) from one arranged part of the series.
NiftiConversion WritePart(ArrangedPart part, const nlohmann::json& sidecar, const SeriesInfo& info) {
  NiftiConversion result;
  std::vector<Slice>& slices = part.slices;
  result.sidecar = sidecar;
  if (slices.front().echo_time_ms) result.sidecar["EchoTime"] = *slices.front().echo_time_ms / 1000.0;
  result.warnings = part.warnings;
  result.suffix = part.suffix;
  const std::vector<std::size_t>& position_starts = part.position_starts;
  const std::size_t positions = part.positions, volumes = part.volumes;
  const double slice_spacing = part.slice_spacing;
  const Vec3 &row_dir = part.row_dir, &col_dir = part.col_dir, &normal = part.normal;
  const bool mr_3d = info.mr_3d;
  const std::string& phase_direction = info.phase_direction;
  const auto& repetition_time = info.repetition_time;
  const auto& csa = info.csa;
  const DicomImage& head = slices.front().image;  // rows may have grown with tilt correction
  if (!result.warnings.empty()) result.sidecar["ConversionWarnings"] = result.warnings;

  // Slice timing (Siemens mosaics), in NIfTI slice order, from the first volume (volumes may
  // differ by a few milliseconds; dcm2niix takes whichever file it read first).
  const std::size_t timing_volume = 0;
  bool timed = positions > 1;
  for (std::size_t p = 0; p < positions && timed; ++p) timed = slices[position_starts[p] + timing_volume].timing_ms.has_value();
  if (timed) {
    std::vector<double> times;
    for (std::size_t p = 0; p < positions; ++p) times.push_back(*slices[position_starts[p] + timing_volume].timing_ms / 1000.0);
    result.sidecar["SliceTiming"] = times;
    result.image.slice_code = SliceCode(times);
  }
  if (csa && result.sidecar.contains("InPlanePhaseEncodingDirectionDICOM")) {
    if (auto positive = CsaNumbers(*csa, "PhaseEncodingDirectionPositive")) {
      const bool rows = phase_direction == "ROW";
      // The rows are flipped on output (y), so a positive column direction reads as j-.
      const bool negative = rows ? positive->front() == 0 : positive->front() == 1;
      result.sidecar["PhaseEncodingDirection"] = std::string(rows ? "i" : "j") + (negative ? "-" : "");
    }
  }

  // Data type and scaling.
  bool same_scaling = true;
  for (const auto& s : slices) {
    same_scaling = same_scaling && s.image.slope == head.slope && s.image.intercept == head.intercept;
  }
  NiftiImage& out = result.image;
  std::size_t width = static_cast<std::size_t>(head.bits_allocated / 8);
  if (!same_scaling) {
    out.datatype = kDtFloat32;
    width = 4;
    result.warnings.push_back("Rescale Slope/Intercept vary across slices: written as float32 with scaling applied");
  } else {
    switch (head.sample_type) {
      case SampleType::kUint8: out.datatype = kDtUint8; break;
      case SampleType::kInt8: out.datatype = kDtInt8; break;
      case SampleType::kInt16: out.datatype = kDtInt16; break;
      case SampleType::kUint32: out.datatype = kDtUint32; break;
      case SampleType::kInt32: out.datatype = kDtInt32; break;
      case SampleType::kUint16: out.datatype = kDtUint16; break;  // int16 when the values allow, below
    }
    out.scl_slope = head.slope;
    out.scl_inter = head.intercept;
  }

  const int64_t columns = head.columns, rows = head.rows;
  out.dims = {columns, rows, static_cast<int64_t>(positions), static_cast<int64_t>(volumes), 1};
  out.dimensions = volumes > 1 ? 4 : 3;
  const double dx = head.pixel_spacing[1], dy = head.pixel_spacing[0];
  out.pixdim = {dx, dy, std::abs(slice_spacing), repetition_time ? *repetition_time / 1000.0 : 0.0};

  // Affine: LPS columns (row direction x dx, column direction x dy, normal x spacing), origin at
  // the first slice's last row after the flip; then LPS -> RAS.
  const Vec3 origin = *slices.front().image.position;
  for (int r = 0; r < 3; ++r) {
    out.srow[r][0] = row_dir[r] * dx;
    out.srow[r][1] = -col_dir[r] * dy;
    out.srow[r][2] = normal[r] * slice_spacing;
    out.srow[r][3] = origin[r] + col_dir[r] * dy * static_cast<double>(rows - 1);
  }
  for (int r = 0; r < 2; ++r)
    for (auto& value : out.srow[r]) value = -value;

  if (phase_direction == "ROW") out.dim_info = 2 | (1 << 2) | (3 << 4);
  if (phase_direction == "COL") out.dim_info = 1 | (2 << 2) | (3 << 4);
  // 3D acquisitions are rotated as dcm2niix does (header here, voxels as the slices are placed).
  Reorientation reorientation;
  const std::array<int64_t, 5> acquired_dims = out.dims;
  if (mr_3d && volumes == 1 && positions > 1) reorientation = NearestOrthogonal(out.srow);
  if (!reorientation.identity) ReorientHeader(out, reorientation);

  // Voxels: volume after volume, slice after slice, rows bottom-up (dcm2niix's y flip).
  const std::size_t row_bytes = static_cast<std::size_t>(columns) * width;
  const std::size_t total_bytes = row_bytes * rows * positions * volumes;
  // A rotated series, or one whose pixels are not read yet, is placed slice by slice; one as
  // acquired and already decoded is appended row by row (its slices freed as they go, so that
  // the output's pages fill as the slices' empty).
  const bool place = !reorientation.identity ||
                     std::all_of(slices.begin(), slices.end(), [](const Slice& s) { return s.deferred; });
  if (place) {
    std::array<int64_t, 3> step{};
    int64_t base = 0;
    const std::array<int64_t, 3> out_stride{1, out.dims[0], out.dims[0] * out.dims[1]};
    for (int w = 0; w < 3; ++w) {
      const int a = reorientation.axis_of_world[w];
      step[a] = reorientation.flip[w] ? -out_stride[w] : out_stride[w];
      if (reorientation.flip[w]) base += (acquired_dims[a] - 1) * out_stride[w];
    }
    std::vector<std::size_t> order;  // volume after volume, position after position
    for (std::size_t t = 0; t < volumes; ++t) {
      for (std::size_t p = 0; p < positions; ++p) order.push_back(position_starts[p] + t);
    }
    out.voxels.resize(total_bytes);
    char* voxels = out.voxels.data();
    const bool to_float = !same_scaling;
    if (width == 1) PlaceSlices<uint8_t>(slices, order, info, step, base, columns, rows, to_float, voxels);
    if (width == 2) PlaceSlices<uint16_t>(slices, order, info, step, base, columns, rows, to_float, voxels);
    if (width == 4) PlaceSlices<uint32_t>(slices, order, info, step, base, columns, rows, to_float, voxels);
  } else {
    LoadDeferred(slices, info);
  }
  if (same_scaling && head.sample_type == SampleType::kUint16) {
    int64_t highest = 0;
    for (const auto& s : slices) highest = std::max(highest, s.image.max_sample);
    out.datatype = highest > 32767 ? kDtUint16 : kDtInt16;
  }
  // Each slice's samples are freed once copied, so the peak stays near one volume.
  if (!place) out.voxels.reserve(total_bytes);
  std::vector<float> scaled_row(static_cast<std::size_t>(columns));
  for (std::size_t t = 0; t < volumes && !place; ++t) {
    for (std::size_t p = 0; p < positions; ++p) {
      Slice& s = slices[position_starts[p] + t];
      for (int64_t r = rows - 1; r >= 0; --r) {
        if (same_scaling) {
          out.voxels.append(reinterpret_cast<const char*>(s.image.samples.data()) + r * row_bytes, row_bytes);
        } else {
          for (int64_t c = 0; c < columns; ++c) {
            scaled_row[c] = static_cast<float>(static_cast<double>(s.image.Sample(r * columns + c)) * s.image.slope +
                                               s.image.intercept);
          }
          out.voxels.append(reinterpret_cast<const char*>(scaled_row.data()), row_bytes);
        }
      }
      SampleBuffer().swap(s.image.samples);
    }
  }
  if (!same_scaling) out.scl_slope = 1, out.scl_inter = 0;

  out.descrip = "procnode " + std::string(kVersion);
  if (part.spacing_split) result.sidecar["ConversionWarnings"] = result.warnings;
  return result;
}


}  // namespace

NiftiImage LabelNiftiImage(const Volume& v, const std::vector<uint8_t>& labels) {
  if (labels.size() != v.dims[0] * v.dims[1] * v.dims[2]) {
    throw Error(ErrorCode::kInvalidInput, "label image: " + std::to_string(labels.size()) + " labels for a " +
                                              std::to_string(v.dims[0]) + " x " + std::to_string(v.dims[1]) + " x " +
                                              std::to_string(v.dims[2]) + " volume");
  }
  NiftiImage image;
  image.dims = {static_cast<int64_t>(v.dims[0]), static_cast<int64_t>(v.dims[1]), static_cast<int64_t>(v.dims[2]), 1, 1};
  image.dimensions = 3;
  image.pixdim = {v.spacing[0], v.spacing[1], v.spacing[2], 0};
  image.datatype = kDtUint8;
  const std::array<const std::array<double, 3>*, 3> axes{&v.row_direction, &v.column_direction, &v.slice_direction};
  for (int axis = 0; axis < 3; ++axis) {
    for (int r = 0; r < 3; ++r) image.srow[r][axis] = (r < 2 ? -1 : 1) * (*axes[axis])[r] * v.spacing[axis];
  }
  image.srow[0][3] = -v.origin[0];  // LPS -> RAS
  image.srow[1][3] = -v.origin[1];
  image.srow[2][3] = v.origin[2];
  image.descrip = "procnode labels";
  image.voxels.assign(reinterpret_cast<const char*>(labels.data()), labels.size());
  return image;
}

SeriesVolume NiftiSeriesVolume(StudySource& source, const SeriesRef& series, const LoadCallbacks& callbacks) {
  auto parts = ConvertSeriesToNifti(source, series, callbacks);
  NiftiConversion& part = parts.front();
  const NiftiImage& image = part.image;
  SeriesVolume result;
  result.volume = VolumeFromNifti(image);
  Volume& v = result.volume;
  v.modality = part.sidecar.value("Modality", "");
  v.units = v.modality == "CT" ? "HU" : "";
  std::string().swap(part.image.voxels);
  result.warnings = part.warnings;
  if (parts.size() > 1) {
    result.warnings.push_back("the series has " + std::to_string(parts.size()) + " parts (" + part.suffix +
                              " first): the first is used");
  }
  result.sources = std::move(part.sources);
  if (!result.sources.empty()) result.series_instance_uid = result.sources.front().series_instance_uid;
  result.study = ReadStudyIdentity(source, series.instance_ids.front());
  return result;
}

std::string NiftiFileStem(const NiftiConversion& conversion) {
  std::string stem = std::to_string(conversion.series_number);
  if (!conversion.series_description.empty()) stem += "_" + conversion.series_description;
  stem += conversion.suffix;
  for (char& c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return stem;
}

std::vector<NiftiConversion> ConvertSeriesToNifti(StudySource& source, const SeriesRef& series,
                                                  const LoadCallbacks& callbacks) {
  nlohmann::json sidecar;
  SeriesSlices read = ReadSeriesSlices(source, series, callbacks, [&sidecar](DcmDataset& ds, const SeriesInfo& info) {
    sidecar = Sidecar(ds);
    // dcm2niix derives Philips' bandwidth from private attributes; the public one would disagree.
    if (info.philips) sidecar.erase("PixelBandwidth");
    if (!info.phase_direction.empty()) sidecar["InPlanePhaseEncodingDirectionDICOM"] = info.phase_direction;
    // Enhanced objects keep it in the shared functional groups.
    if (!DicomNumber(ds, 0x0018, 0x0080) && info.repetition_time) sidecar["RepetitionTime"] = *info.repetition_time / 1000.0;
  });
  std::vector<NiftiConversion> parts;
  for (auto& part : SplitParts(std::move(read.slices))) {
    for (auto& arranged : ArrangePart(std::move(part.slices), read.info)) {
      NiftiConversion conversion = WritePart(std::move(arranged), sidecar, read.info);
      conversion.series_number = read.series_number;
      conversion.series_description = read.description;
      conversion.suffix = part.suffix + conversion.suffix;
      conversion.sources = read.sources;
      parts.push_back(std::move(conversion));
    }
  }
  return parts;
}

}  // namespace procnode
