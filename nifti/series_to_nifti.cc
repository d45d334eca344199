#include "nifti/series_to_nifti.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "core/parallel.h"
#include "core/text.h"
#include "core/version.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "dicom/siemens_csa.h"

namespace procnode {
namespace {

using Vec3 = std::array<double, 3>;
using Affine = std::array<std::array<double, 4>, 3>;

Vec3 Cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double Dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double Norm(const Vec3& a) { return std::sqrt(Dot(a, a)); }

std::string Format(double value) {
  std::ostringstream out;
  out.precision(4);
  out << value;
  return out.str();
}

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

// dcm2niix's rotation of 3D acquisitions: voxel axis w of the output runs along world axis w
// (RAS), increasing; the nearest orthogonal orientation to the acquired one.
struct Reorientation {
  std::array<int, 3> axis_of_world{0, 1, 2};  // input voxel axis feeding output axis w
  std::array<bool, 3> flip{false, false, false};
  bool identity = true;
};

Reorientation NearestOrthogonal(const Affine& m) {
  Reorientation r;
  r.axis_of_world = {-1, -1, -1};
  std::array<bool, 3> used{false, false, false};
  for (int pass = 0; pass < 3; ++pass) {  // greedy by largest cosine, so every axis is used once
    double best = -1;
    int best_world = 0, best_axis = 0;
    for (int world = 0; world < 3; ++world) {
      if (r.axis_of_world[world] >= 0) continue;
      for (int axis = 0; axis < 3; ++axis) {
        if (used[axis]) continue;
        const double length = std::hypot(m[0][axis], m[1][axis], m[2][axis]);
        const double cosine = std::abs(m[world][axis]) / (length > 0 ? length : 1);
        if (cosine > best) best = cosine, best_world = world, best_axis = axis;
      }
    }
    r.axis_of_world[best_world] = best_axis;
    used[best_axis] = true;
  }
  for (int w = 0; w < 3; ++w) r.flip[w] = m[w][r.axis_of_world[w]] < 0;
  r.identity = r.axis_of_world == std::array<int, 3>{0, 1, 2} && !r.flip[0] && !r.flip[1] && !r.flip[2];
  return r;
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

struct Slice {
  DicomImage image;
  double key = 0;                      // position along the slice normal
  std::optional<double> timing_ms;     // acquisition time within the volume (Siemens mosaics)
  std::tuple<long, long, long> order;  // instance number, temporal position, frame: time order
  std::optional<double> echo;          // what splits echoes: EchoNumbers (classic) or echo time (enhanced)
  std::optional<double> echo_time_ms;  // EffectiveEchoTime (enhanced)
  std::string component;               // "", "ph", "real", "imaginary", "fieldmaphz"
  std::size_t instance = 0;            // index of its instance in the series
  bool deferred = false;               // samples not read yet (SeriesInfo::load_pixels reads them)
};

// The Siemens CSA image header of `ds`, when it has one.
std::optional<SiemensCsa> CsaImageHeader(DcmDataset& ds, const std::string& name) {
  const Uint8* bytes = nullptr;
  unsigned long length = 0;
  if (ds.findAndGetUint8Array(DcmTagKey(0x0029, 0x1010), bytes, &length).bad() || bytes == nullptr) return std::nullopt;
  return ParseSiemensCsa(std::string_view(reinterpret_cast<const char*>(bytes), length), name);
}

// Splits a Siemens mosaic into its slices (dcm2niix's mosaic geometry): tiles of
// Rows/ceil(sqrt(N)) x Columns/ceil(sqrt(N)), the first slice centred where the mosaic's
// ImagePositionPatient (its top-left corner) says once corrected by half the unused area, and the
// following ones along the CSA SliceNormalVector, SpacingBetweenSlices apart.
std::vector<Slice> UnpackMosaic(DcmDataset& ds, DicomImage& mosaic, const std::optional<SiemensCsa>& csa) {
  const std::string& name = mosaic.name;
  std::optional<double> count = DicomNumber(ds, 0x0019, 0x100A);
  if (!count) {  // Implicit VR: the private US arrives as two raw bytes
    if (auto raw = DicomBytes(ds, 0x0019, 0x100A); raw && raw->size() == 2) count = (*raw)[0] | ((*raw)[1] << 8);
  }
  if (!count && csa) {
    if (auto values = CsaNumbers(*csa, "NumberOfImagesInMosaic")) count = values->front();
  }
  if (!count || *count < 1) throw Error(ErrorCode::kInvalidInput, name + ": mosaic without NumberOfImagesInMosaic");
  const long slices = std::lround(*count);
  const long tiles = static_cast<long>(std::ceil(std::sqrt(static_cast<double>(slices))));
  if (mosaic.rows % tiles != 0 || mosaic.columns % tiles != 0 || mosaic.frames != 1) {
    throw Error(ErrorCode::kInvalidInput, name + ": a " + std::to_string(mosaic.columns) + "x" + std::to_string(mosaic.rows) +
                                              " mosaic cannot hold " + std::to_string(slices) + " equal tiles");
  }
  if (!mosaic.position || !mosaic.orientation) {
    throw Error(ErrorCode::kInvalidInput, name + ": ImagePositionPatient or ImageOrientationPatient missing");
  }
  const long tile_rows = mosaic.rows / tiles, tile_columns = mosaic.columns / tiles;
  const auto& o = *mosaic.orientation;
  const Vec3 row_dir{o[0], o[1], o[2]}, col_dir{o[3], o[4], o[5]};
  Vec3 normal = Cross(row_dir, col_dir);
  if (csa) {
    if (auto v = CsaNumbers(*csa, "SliceNormalVector"); v && v->size() == 3 && Dot({(*v)[0], (*v)[1], (*v)[2]}, normal) < 0) {
      normal = {-normal[0], -normal[1], -normal[2]};
    }
  }
  const double spacing = DicomNumber(ds, 0x0018, 0x0088).value_or(mosaic.slice_thickness > 0 ? mosaic.slice_thickness : 1);
  const double dx = mosaic.pixel_spacing[1], dy = mosaic.pixel_spacing[0];
  const double shift_columns = (mosaic.columns - tile_columns) / 2.0, shift_rows = (mosaic.rows - tile_rows) / 2.0;
  Vec3 first = *mosaic.position;
  for (int r = 0; r < 3; ++r) first[r] += row_dir[r] * dx * shift_columns + col_dir[r] * dy * shift_rows;

  // Slice times: the CSA header's (as dcm2niix prefers), else the (0019,1029) copy.
  std::vector<double> times;
  if (csa) {
    if (auto v = CsaNumbers(*csa, "MosaicRefAcqTimes")) times = *v;
  }
  for (unsigned long i = 0; times.empty() || (i > 0 && i < static_cast<unsigned long>(slices)); ++i) {
    auto t = DicomNumber(ds, 0x0019, 0x1029, i);
    if (!t) break;
    times.push_back(*t);
  }

  const std::size_t width = mosaic.samples.size() / mosaic.SampleCount();
  const std::size_t tile_row_bytes = static_cast<std::size_t>(tile_columns) * width;
  std::vector<Slice> out;
  for (long k = 0; k < slices; ++k) {
    Slice slice;
    DicomImage& tile = slice.image;
    tile.name = name + " (mosaic slice " + std::to_string(k + 1) + ")";
    tile.rows = tile_rows, tile.columns = tile_columns, tile.frames = 1;
    tile.bits_allocated = mosaic.bits_allocated, tile.bits_stored = mosaic.bits_stored;
    tile.is_signed = mosaic.is_signed, tile.sample_type = mosaic.sample_type;
    tile.orientation = mosaic.orientation;
    tile.pixel_spacing = mosaic.pixel_spacing, tile.has_pixel_spacing = mosaic.has_pixel_spacing;
    tile.slice_thickness = mosaic.slice_thickness, tile.slope = mosaic.slope, tile.intercept = mosaic.intercept;
    tile.instance_number = mosaic.instance_number;
    slice.order = {mosaic.instance_number, 0, 0};
    tile.position = Vec3{first[0] + normal[0] * spacing * k, first[1] + normal[1] * spacing * k,
                         first[2] + normal[2] * spacing * k};
    tile.samples.resize(tile_row_bytes * tile_rows);
    const long top = (k / tiles) * tile_rows, left = (k % tiles) * tile_columns;
    for (long r = 0; r < tile_rows; ++r) {
      std::memcpy(tile.samples.data() + r * tile_row_bytes,
                  mosaic.samples.data() + ((top + r) * mosaic.columns + left) * width, tile_row_bytes);
    }
    tile.max_sample = 0;
    for (std::size_t i = 0; i < tile.SampleCount(); ++i) tile.max_sample = std::max(tile.max_sample, tile.Sample(i));
    if (static_cast<std::size_t>(k) < times.size()) slice.timing_ms = times[k];
    out.push_back(std::move(slice));
  }
  SampleBuffer().swap(mosaic.samples);
  return out;
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
  Volume& v = result.volume;
  v.dims = {static_cast<std::size_t>(image.dims[0]), static_cast<std::size_t>(image.dims[1]),
            static_cast<std::size_t>(image.dims[2] * image.dims[3])};
  std::array<std::array<double, 3>*, 3> axes{&v.row_direction, &v.column_direction, &v.slice_direction};
  for (int axis = 0; axis < 3; ++axis) {
    const double length = std::hypot(image.srow[0][axis], image.srow[1][axis], image.srow[2][axis]);
    v.spacing[axis] = length;
    for (int r = 0; r < 3; ++r) (*axes[axis])[r] = (r < 2 ? -1 : 1) * image.srow[r][axis] / (length > 0 ? length : 1);
  }
  v.origin = {-image.srow[0][3], -image.srow[1][3], image.srow[2][3]};  // RAS -> LPS
  v.modality = part.sidecar.value("Modality", "");
  v.units = v.modality == "CT" ? "HU" : "";
  const std::size_t count = v.VoxelCount();
  v.voxels.resize(count);
  auto scale = [&](auto* stored) {
    for (std::size_t i = 0; i < count; ++i) v.voxels[i] = static_cast<float>(stored[i] * image.scl_slope + image.scl_inter);
  };
  const char* data = image.voxels.data();
  switch (image.datatype) {
    case kDtUint8: scale(reinterpret_cast<const uint8_t*>(data)); break;
    case kDtInt8: scale(reinterpret_cast<const int8_t*>(data)); break;
    case kDtInt16: scale(reinterpret_cast<const int16_t*>(data)); break;
    case kDtUint16: scale(reinterpret_cast<const uint16_t*>(data)); break;
    case kDtInt32: scale(reinterpret_cast<const int32_t*>(data)); break;
    case kDtUint32: scale(reinterpret_cast<const uint32_t*>(data)); break;
    case kDtFloat32: scale(reinterpret_cast<const float*>(data)); break;
  }
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

namespace {

// What the first instance says about the whole series.
struct SeriesInfo {
  std::string name;
  nlohmann::json sidecar;
  bool mr_3d = false;
  std::string phase_direction;
  std::optional<double> repetition_time, tilt;
  bool mosaic = false;
  bool philips = false;
  std::optional<SiemensCsa> csa;
  // Reads a deferred slice's samples (and max_sample) from its instance again.
  std::function<void(Slice&)> load_pixels;
  bool defer_pixels = false;
};

// Reads the samples of every deferred slice, in parallel.
void LoadDeferred(std::vector<Slice>& slices, const SeriesInfo& info) {
  std::vector<Slice*> pending;
  for (auto& s : slices) {
    if (s.deferred) pending.push_back(&s);
  }
  ParallelFor(pending.size(), [&](std::size_t i) { info.load_pixels(*pending[i]); });
}

// A slice's samples replaced by float32 in modality units (rescale applied), for series whose
// rescale varies from slice to slice.
void ToModalityFloat(DicomImage& image) {
  SampleBuffer floats(image.SampleCount() * sizeof(float));
  auto* values = reinterpret_cast<float*>(floats.data());
  for (std::size_t i = 0; i < image.SampleCount(); ++i) {
    values[i] = static_cast<float>(static_cast<double>(image.Sample(i)) * image.slope + image.intercept);
  }
  image.samples.swap(floats);
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

// The item of functional-group macro `macro` for one frame: per-frame first, else shared (PS3.3 C.7.6.16).
DcmItem* GroupItem(DcmDataset& ds, DcmItem* per_frame, const DcmTagKey& macro) {
  DcmItem* item = nullptr;
  if (per_frame != nullptr && per_frame->findAndGetSequenceItem(macro, item, 0).good() && item != nullptr) return item;
  DcmItem* shared = nullptr;
  if (ds.findAndGetSequenceItem(DcmTagKey(0x5200, 0x9229), shared, 0).good() && shared != nullptr &&
      shared->findAndGetSequenceItem(macro, item, 0).good()) {
    return item;
  }
  return nullptr;
}

std::optional<double> ItemNumber(DcmItem* item, const DcmTagKey& tag) {
  return item == nullptr ? std::nullopt : DicomNumber(*item, tag);
}

std::string ItemString(DcmItem* item, const DcmTagKey& tag) { return item == nullptr ? "" : DicomString(*item, tag); }

// Philips "precise" (floating-point) scaling, dcm2niix's default (-p y): FP = (PV * RS + RI) / (RS * SS)
// with SS the private MR Scale Slope (2005,100E); see PMC3998685.
void ApplyPhilipsScaling(DcmItem* philips_item, DicomImage& image) {
  const auto scale_slope = ItemNumber(philips_item, DcmTagKey(0x2005, 0x100E));
  if (!scale_slope || *scale_slope == 0 || image.slope == 0) return;
  image.intercept = image.intercept / (image.slope * *scale_slope);
  image.slope = 1.0 / *scale_slope;
}

// The image component a DICOM ImageType or FrameType names: "ph", "real", "imaginary",
// "fieldmaphz" (Philips B0 maps), or "" for magnitude.
std::string ComponentOf(const std::string& type, const std::string& complex_component) {
  if (type.find("FIELD_MAP") != std::string::npos || type.find("B0 MAP") != std::string::npos) return "fieldmaphz";
  if (complex_component == "PHASE") return "ph";
  if (complex_component == "REAL") return "real";
  if (complex_component == "IMAGINARY") return "imaginary";
  const std::vector<std::string> tokens = Split(type, '\\');
  if (tokens.size() > 2 && (tokens[2] == "P" || tokens[2] == "PHASE")) return "ph";
  return "";
}

// Splits an enhanced multi-frame object (PS3.3 C.7.6.16) into one slice per frame, each with its
// own position, orientation, spacing, rescale, echo time and component.
std::vector<Slice> ExpandEnhanced(DcmDataset& ds, DicomImage& image, const SeriesInfo& info) {
  std::vector<Slice> out;
  const std::size_t per_frame = static_cast<std::size_t>(image.rows) * image.columns;
  const std::size_t width = image.samples.size() / image.SampleCount();
  for (long f = 0; f < image.frames; ++f) {
    DcmItem* frame = nullptr;
    ds.findAndGetSequenceItem(DcmTagKey(0x5200, 0x9230), frame, static_cast<int>(f));
    Slice slice;
    DicomImage& tile = slice.image;
    tile = DicomImage{};
    tile.name = image.name + " (frame " + std::to_string(f + 1) + ")";
    tile.rows = image.rows, tile.columns = image.columns, tile.frames = 1;
    tile.bits_allocated = image.bits_allocated, tile.bits_stored = image.bits_stored;
    tile.is_signed = image.is_signed, tile.sample_type = image.sample_type;
    tile.max_sample = image.max_sample;
    tile.modality = image.modality;
    tile.instance_number = image.instance_number;
    tile.slope = image.slope, tile.intercept = image.intercept;
    tile.samples.assign(image.samples.begin() + f * per_frame * width, image.samples.begin() + (f + 1) * per_frame * width);
    ReadPlaneGeometry(GroupItem(ds, frame, DcmTagKey(0x0020, 0x9113)),   // Plane Position
                      GroupItem(ds, frame, DcmTagKey(0x0020, 0x9116)),   // Plane Orientation
                      GroupItem(ds, frame, DcmTagKey(0x0028, 0x9110)),   // Pixel Measures
                      tile);
    if (DcmItem* item = GroupItem(ds, frame, DcmTagKey(0x0028, 0x9145))) {  // Pixel Value Transformation
      tile.slope = ItemNumber(item, DCM_RescaleSlope).value_or(1);
      tile.intercept = ItemNumber(item, DCM_RescaleIntercept).value_or(0);
    }
    if (info.philips) ApplyPhilipsScaling(GroupItem(ds, frame, DcmTagKey(0x2005, 0x140F)), tile);
    long temporal = 0;
    if (DcmItem* item = GroupItem(ds, frame, DcmTagKey(0x0020, 0x9111))) {  // Frame Content
      temporal = std::lround(ItemNumber(item, DcmTagKey(0x0020, 0x9128)).value_or(0));
    }
    slice.order = {image.instance_number, temporal, f};
    if (DcmItem* item = GroupItem(ds, frame, DcmTagKey(0x0018, 0x9114))) {  // MR Echo
      slice.echo = slice.echo_time_ms = ItemNumber(item, DcmTagKey(0x0018, 0x9082));
    }
    DcmItem* type_item = GroupItem(ds, frame, DcmTagKey(0x0018, 0x9226));  // MR Image Frame Type
    if (type_item == nullptr) type_item = GroupItem(ds, frame, DcmTagKey(0x0018, 0x9329));  // CT Image Frame Type
    slice.component = ComponentOf(ItemString(type_item, DcmTagKey(0x0008, 0x9007)),
                                  ItemString(type_item, DcmTagKey(0x0008, 0x9208)));
    out.push_back(std::move(slice));
  }
  SampleBuffer().swap(image.samples);
  return out;
}

void CheckConsistent(const DicomImage& image, const DicomImage& first) {
  const std::string& name = image.name;
  if (image.rows != first.rows || image.columns != first.columns) {
    throw Error(ErrorCode::kInvalidInput, name + ": " + std::to_string(image.columns) + "x" + std::to_string(image.rows) +
                                              " differs from " + first.name + " (" + std::to_string(first.columns) +
                                              "x" + std::to_string(first.rows) + ")");
  }
  if (image.sample_type != first.sample_type) {
    throw Error(ErrorCode::kInvalidInput, name + ": pixel representation or BitsAllocated differs from " + first.name);
  }
  if (image.orientation && first.orientation) {
    for (int k = 0; k < 6; ++k) {
      if (std::abs((*image.orientation)[k] - (*first.orientation)[k]) > 1e-4) {
        throw Error(ErrorCode::kInvalidInput, name + ": ImageOrientationPatient differs from " + first.name);
      }
    }
  }
  if (std::abs(image.pixel_spacing[0] - first.pixel_spacing[0]) > 1e-4 ||
      std::abs(image.pixel_spacing[1] - first.pixel_spacing[1]) > 1e-4) {
    throw Error(ErrorCode::kInvalidInput, name + ": PixelSpacing differs from " + first.name);
  }
}

void StoreSample(DicomImage& image, std::size_t i, int64_t value) {
  switch (image.sample_type) {
    case SampleType::kUint8: image.samples[i] = static_cast<uint8_t>(std::clamp<int64_t>(value, 0, 255)); break;
    case SampleType::kInt8: reinterpret_cast<int8_t*>(image.samples.data())[i] = static_cast<int8_t>(std::clamp<int64_t>(value, -128, 127)); break;
    case SampleType::kUint16: reinterpret_cast<uint16_t*>(image.samples.data())[i] = static_cast<uint16_t>(std::clamp<int64_t>(value, 0, 65535)); break;
    case SampleType::kInt16: reinterpret_cast<int16_t*>(image.samples.data())[i] = static_cast<int16_t>(std::clamp<int64_t>(value, -32768, 32767)); break;
    case SampleType::kUint32: reinterpret_cast<uint32_t*>(image.samples.data())[i] = static_cast<uint32_t>(std::max<int64_t>(value, 0)); break;
    case SampleType::kInt32: reinterpret_cast<int32_t*>(image.samples.data())[i] = static_cast<int32_t>(value); break;
  }
}

// Gantry tilt correction (as dcm2niix corrects it, by resampling): the slices of a tilted
// acquisition are stacked along the table, so each is displaced along the column direction by
// k * t from a stack perpendicular to the slices. Each slice is shifted back by linear
// interpolation along its columns onto an orthogonal grid, enlarged so nothing is cut off; rows
// with no data take the series' lowest stored value. `slices` are sorted, one per position,
// evenly spaced; the returned ones are perpendicular to the slice normal.
std::vector<Slice> TiltCorrect(std::vector<Slice> slices, const Vec3& col_dir, const Vec3& normal, double dy,
                               std::string& note) {
  const std::size_t n = slices.size();
  const Vec3& p0 = *slices.front().image.position;
  const Vec3& pn = *slices.back().image.position;
  const Vec3 step{(pn[0] - p0[0]) / (n - 1), (pn[1] - p0[1]) / (n - 1), (pn[2] - p0[2]) / (n - 1)};
  const double along = Dot(step, normal), across = Dot(step, col_dir);  // mm per slice
  const double shift_per_slice = across / dy;                           // rows per slice
  const double total = shift_per_slice * static_cast<double>(n - 1);
  const long first_row = static_cast<long>(std::floor(std::min(0.0, total)));
  const long rows = slices.front().image.rows, columns = slices.front().image.columns;
  const long rows_out = rows + static_cast<long>(std::ceil(std::abs(total)));
  int64_t fill = std::numeric_limits<int64_t>::max();
  for (const auto& s : slices)
    for (std::size_t i = 0; i < s.image.SampleCount(); ++i) fill = std::min(fill, s.image.Sample(i));
  const std::size_t width = slices.front().image.samples.size() / slices.front().image.SampleCount();
  std::vector<Slice> out;
  for (std::size_t k = 0; k < n; ++k) {
    Slice corrected = slices[k];
    DicomImage& image = corrected.image;
    image.rows = rows_out;
    image.samples.assign(static_cast<std::size_t>(rows_out * columns) * width, 0);
    const DicomImage& source = slices[k].image;
    for (long r = 0; r < rows_out; ++r) {
      // Output row r lies at row r + first_row of slice 0's frame: in slice k, k shifts further.
      const double source_row = static_cast<double>(r + first_row) - static_cast<double>(k) * shift_per_slice;
      const long low = static_cast<long>(std::floor(source_row));
      const double f = source_row - static_cast<double>(low);
      for (long c = 0; c < columns; ++c) {
        int64_t value = fill;
        if (low >= 0 && low < rows && (f < 1e-9 || low + 1 < rows)) {
          const double a = static_cast<double>(source.Sample(static_cast<std::size_t>(low * columns + c)));
          const double b = f < 1e-9 ? a : static_cast<double>(source.Sample(static_cast<std::size_t>((low + 1) * columns + c)));
          value = std::llround((1 - f) * a + f * b);
        }
        StoreSample(image, static_cast<std::size_t>(r * columns + c), value);
      }
    }
    const double offset = static_cast<double>(first_row) * dy;
    image.position = Vec3{p0[0] + normal[0] * along * k + col_dir[0] * offset,
                          p0[1] + normal[1] * along * k + col_dir[1] * offset,
                          p0[2] + normal[2] * along * k + col_dir[2] * offset};
    image.max_sample = std::max(image.max_sample, fill);
    out.push_back(std::move(corrected));
  }
  std::ostringstream text;
  text.precision(4);
  text << "gantry tilt corrected: slices shifted by " << across << " mm each along the columns (linear "
       << "interpolation), grid enlarged to " << rows_out << " rows; slice spacing " << along << " mm";
  note = text.str();
  return out;
}

// One output image from the slices of one part (one echo and component) of the series; a 3D part
// whose slice spacing changes is split into evenly spaced runs, one image each.
std::vector<NiftiConversion> AssemblePart(std::vector<Slice> slices, const SeriesInfo& info) {
  NiftiConversion result;
  result.sidecar = info.sidecar;
  if (slices.front().echo_time_ms) result.sidecar["EchoTime"] = *slices.front().echo_time_ms / 1000.0;
  const std::string& series_name = info.name;
  const bool mr_3d = info.mr_3d;
  const std::string& phase_direction = info.phase_direction;
  const auto& repetition_time = info.repetition_time;
  const auto& tilt = info.tilt;
  const auto& csa = info.csa;
  for (const auto& s : slices) {
    if (!s.image.position || !s.image.orientation) {
      throw Error(ErrorCode::kInvalidInput, s.image.name + ": ImagePositionPatient or ImageOrientationPatient missing");
    }
    CheckConsistent(s.image, slices.front().image);
  }
  const DicomImage& first = slices.front().image;
  const auto& iop = *first.orientation;
  const Vec3 row_dir{iop[0], iop[1], iop[2]}, col_dir{iop[3], iop[4], iop[5]};
  const Vec3 normal = Cross(row_dir, col_dir);
  for (auto& s : slices) s.key = Dot(*s.image.position, normal);
  std::stable_sort(slices.begin(), slices.end(), [](const Slice& a, const Slice& b) {
    if (std::abs(a.key - b.key) > 1e-3) return a.key < b.key;
    return a.order < b.order;
  });

  // Positions along the normal; repeated positions are time points (4D).
  std::vector<std::size_t> position_starts{0};
  for (std::size_t i = 1; i < slices.size(); ++i) {
    if (std::abs(slices[i].key - slices[i - 1].key) > 1e-3) position_starts.push_back(i);
  }
  const std::size_t positions = position_starts.size();
  const std::size_t volumes = slices.size() / positions;
  if (volumes * positions != slices.size()) {
    throw Error(ErrorCode::kInvalidInput, series_name + ": " + std::to_string(slices.size()) + " images over " +
                                              std::to_string(positions) + " slice positions: some positions lack images");
  }
  for (std::size_t p = 0; p < positions; ++p) {
    const std::size_t end = p + 1 < positions ? position_starts[p + 1] : slices.size();
    if (end - position_starts[p] != volumes) {
      throw Error(ErrorCode::kInvalidInput, series_name + ": slice position " + std::to_string(p + 1) + " has " +
                                                std::to_string(end - position_starts[p]) + " images, others " +
                                                std::to_string(volumes));
    }
  }

  double slice_spacing = first.slice_thickness > 0 ? first.slice_thickness : 1.0;
  std::vector<Slice> corrected;  // tilt-corrected slices, when the acquisition was tilted
  if (positions > 1) {
    double lo = 1e300, hi = -1e300;
    std::vector<double> gaps;
    for (std::size_t p = 1; p < positions; ++p) {
      gaps.push_back(slices[position_starts[p]].key - slices[position_starts[p - 1]].key);
      lo = std::min(lo, gaps.back()), hi = std::max(hi, gaps.back());
    }
    const double mean_gap = (slices[position_starts.back()].key - slices.front().key) / static_cast<double>(positions - 1);
    if (hi - lo > 0.01 * std::max(1.0, std::abs(mean_gap))) {
      if (volumes > 1) {
        throw Error(ErrorCode::kUnsupported, series_name + ": slice spacing varies " + Format(lo) + "-" + Format(hi) +
                                                 " mm in a 4D series; NIfTI needs uniform spacing");
      }
      // Split into runs of even spacing: a new run starts where the gap changes.
      std::vector<std::vector<Slice>> runs(1);
      runs.back().push_back(std::move(slices[0]));
      for (std::size_t p = 1; p < positions; ++p) {
        const bool breaks = runs.back().size() >= 2 &&
                            std::abs(gaps[p - 1] - (runs.back()[1].key - runs.back()[0].key)) > 0.01 * std::max(1.0, gaps[p - 1]);
        const bool orphan_gap = runs.back().size() == 1 && p + 1 < positions &&
                                std::abs(gaps[p - 1] - gaps[p]) > 0.01 * std::max(1.0, gaps[p]);
        if (breaks || orphan_gap) runs.emplace_back();
        runs.back().push_back(std::move(slices[p]));
      }
      std::vector<NiftiConversion> parts;
      for (std::size_t r = 0; r < runs.size(); ++r) {
        for (auto& part : AssemblePart(std::move(runs[r]), info)) {
          part.suffix = "_part" + std::to_string(r + 1) + part.suffix;
          part.warnings.insert(part.warnings.begin(), "slice spacing varies " + Format(lo) + "-" + Format(hi) +
                                                          " mm: split into " + std::to_string(runs.size()) +
                                                          " evenly spaced parts; this is part " + std::to_string(r + 1));
          part.sidecar["ConversionWarnings"] = part.warnings;
          parts.push_back(std::move(part));
        }
      }
      return parts;
    }
    const Vec3& a = *slices.front().image.position;
    const Vec3& b = *slices[position_starts.back()].image.position;
    slice_spacing = mean_gap;
    const Vec3 through{b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    const double cosine = std::min(1.0, std::abs(Dot(through, normal)) / Norm(through));
    const double tilt_degrees = std::acos(cosine) * 180.0 / M_PI;
    if (tilt_degrees > 0.1 || (tilt && std::abs(*tilt) > 0.1 && tilt_degrees > 0.01)) {
      if (volumes > 1) {
        throw Error(ErrorCode::kUnsupported, series_name + ": gantry tilt of " + Format(tilt ? *tilt : tilt_degrees) +
                                                 " degrees in a 4D series is not corrected");
      }
      std::string note;
      const double row_spacing = first.pixel_spacing[0];
      LoadDeferred(slices, info);
      corrected = TiltCorrect(std::move(slices), col_dir, normal, row_spacing, note);
      result.warnings.push_back("gantry tilt of " + Format(tilt ? *tilt : tilt_degrees) + " degrees: " + note);
      for (auto& s : corrected) s.key = Dot(*s.image.position, normal);
      slices = std::move(corrected);
      slice_spacing = (slices.back().key - slices.front().key) / static_cast<double>(positions - 1);
    }
  }
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
  std::vector<NiftiConversion> single;  // not {std::move(result)}: an initializer list would copy the voxels
  single.push_back(std::move(result));
  return single;
}

}  // namespace


std::vector<NiftiConversion> ConvertSeriesToNifti(StudySource& source, const SeriesRef& series,
                                                  const LoadCallbacks& callbacks) {
  if (series.instance_ids.empty()) throw Error(ErrorCode::kInvalidInput, "series " + series.id + ": no instances");
  SeriesInfo info;
  info.name = "series " + series.id;
  int series_number = 0;
  std::string description;
  const std::size_t total = series.instance_ids.size();
  // Instance 0 first (it describes the series), then the others in parallel, each instance's
  // slices kept in its own place so the order does not depend on the threads.
  std::vector<std::vector<Slice>> per_instance(total);
  std::vector<SourceInstance> sources(total);
  std::mutex progress_mutex;
  std::size_t done = 0, steps = total;  // two steps per instance when its pixels are read in a second pass
  auto step_done = [&] {
    if (!callbacks.progress) return;
    std::lock_guard lock(progress_mutex);
    callbacks.progress(++done, steps);
  };
  auto read_instance = [&](std::size_t i) {
    if (callbacks.cancelled && callbacks.cancelled()) {
      throw Error(ErrorCode::kCancelled, info.name + ": conversion cancelled");
    }
    const std::string name = "instance " + series.instance_ids[i];
    auto file = ReadInstance(source, series.instance_ids[i], name);
    DcmDataset& ds = *file->getDataset();
    if (i == 0) {
      info.sidecar = Sidecar(ds);
      series_number = static_cast<int>(DicomNumber(ds, 0x0020, 0x0011).value_or(0));
      description = DicomString(ds, 0x0008, 0x103E);
      info.mr_3d = DicomString(ds, 0x0018, 0x0023) == "3D";
      info.tilt = DicomNumber(ds, 0x0018, 0x1120);
      info.mosaic = DicomString(ds, 0x0008, 0x0008).find("MOSAIC") != std::string::npos;
      // A 3D acquisition is rotated on output. Its single-frame images are read twice where that
      // is cheap: headers now (to sort and check the series), pixels later, straight into their
      // place in the rotated output, so the series is held once, not three times (before, beside
      // and after the rotation). Other series are assembled as their images are decoded, freeing
      // each once copied: they peak near one volume anyway, and a second read would only cost time.
      info.defer_pixels = info.mr_3d && !info.mosaic && source.RereadIsCheap();
      if (info.defer_pixels) steps = 2 * total;
      info.philips = info.sidecar.value("Manufacturer", "") == "Philips";
      // dcm2niix derives Philips' bandwidth from private attributes; the public one would disagree.
      if (info.philips) info.sidecar.erase("PixelBandwidth");
      info.csa = CsaImageHeader(ds, name);
      // Enhanced objects keep these in the shared functional groups.
      info.phase_direction = DicomString(ds, 0x0018, 0x1312);
      if (info.phase_direction.empty()) {
        info.phase_direction = ItemString(GroupItem(ds, nullptr, DcmTagKey(0x0018, 0x9125)), DcmTagKey(0x0018, 0x1312));
      }
      if (info.phase_direction == "COLUMN") info.phase_direction = "COL";  // enhanced objects spell it out
      if (!info.phase_direction.empty()) info.sidecar["InPlanePhaseEncodingDirectionDICOM"] = info.phase_direction;
      info.repetition_time = DicomNumber(ds, 0x0018, 0x0080);
      if (!info.repetition_time) {
        info.repetition_time = ItemNumber(GroupItem(ds, nullptr, DcmTagKey(0x0018, 0x9112)), DcmTagKey(0x0018, 0x0080));
        if (info.repetition_time) info.sidecar["RepetitionTime"] = *info.repetition_time / 1000.0;
      }
    }
    DicomImage decoded = DecodeDicomImageHeader(ds, name);
    const bool multi_frame = decoded.frames > 1 || ds.tagExists(DcmTagKey(0x5200, 0x9230));
    const bool deferred = info.defer_pixels && !info.mosaic && !multi_frame;
    if (!deferred) DecodeDicomPixels(ds, decoded);
    sources[i] = {.sop_class_uid = decoded.sop_class_uid, .sop_instance_uid = decoded.sop_instance_uid,
                  .series_instance_uid = decoded.series_uid,
                  .frame_of_reference_uid = DicomString(ds, 0x0020, 0x0052), .rows = decoded.rows,
                  .columns = decoded.columns, .frames = decoded.frames, .position = decoded.position,
                  .orientation = decoded.orientation, .pixel_spacing = decoded.pixel_spacing,
                  .slice_thickness = decoded.slice_thickness};
    std::vector<Slice>& found = per_instance[i];
    if (info.mosaic) {
      found = UnpackMosaic(ds, decoded, i == 0 ? info.csa : CsaImageHeader(ds, name));
    } else if (multi_frame) {
      found = ExpandEnhanced(ds, decoded, info);
    } else {
      if (info.philips) ApplyPhilipsScaling(&ds, decoded);
      Slice slice{std::move(decoded)};
      slice.order = {slice.image.instance_number, 0, 0};
      slice.echo = DicomNumber(ds, 0x0018, 0x0086);
      slice.component = ComponentOf(DicomString(ds, 0x0008, 0x0008), "");
      slice.instance = i;
      slice.deferred = deferred;
      found.push_back(std::move(slice));
    }
    step_done();
  };
  info.load_pixels = [&](Slice& slice) {
    if (callbacks.cancelled && callbacks.cancelled()) {
      throw Error(ErrorCode::kCancelled, info.name + ": conversion cancelled");
    }
    DicomImage& image = slice.image;
    auto file = ReadInstance(source, series.instance_ids[slice.instance], image.name);
    DcmDataset& ds = *file->getDataset();
    const DicomImage again = DecodeDicomImageHeader(ds, image.name);
    if (again.sop_instance_uid != image.sop_instance_uid || again.rows != image.rows || again.columns != image.columns ||
        again.frames != image.frames || again.bits_allocated != image.bits_allocated ||
        again.bits_stored != image.bits_stored || again.high_bit != image.high_bit || again.is_signed != image.is_signed) {
      throw Error(ErrorCode::kInvalidInput, image.name + ": the file changed while the series was being converted");
    }
    DecodeDicomPixels(ds, image);
    slice.deferred = false;
    step_done();
  };
  read_instance(0);
  ParallelFor(total - 1, [&](std::size_t i) { read_instance(i + 1); });
  std::vector<Slice> slices;
  for (auto& found : per_instance) {
    for (auto& slice : found) {
      if (!slices.empty()) CheckConsistent(slice.image, slices.front().image);
      slices.push_back(std::move(slice));
    }
    std::vector<Slice>().swap(found);
  }

  // Parts: one output per echo and component, in order of first appearance (dcm2niix's _e1, _e2,
  // _ph, _fieldmaphz files).
  std::vector<std::pair<std::optional<double>, std::string>> part_keys;
  std::vector<std::optional<double>> echoes;
  for (const auto& s : slices) {
    const auto key = std::make_pair(s.echo, s.component);
    if (std::find(part_keys.begin(), part_keys.end(), key) == part_keys.end()) part_keys.push_back(key);
    if (std::find(echoes.begin(), echoes.end(), s.echo) == echoes.end()) echoes.push_back(s.echo);
  }
  std::vector<NiftiConversion> parts;
  for (const auto& key : part_keys) {
    std::vector<Slice> selected;
    for (auto& s : slices) {
      if (s.echo == key.first && s.component == key.second) selected.push_back(std::move(s));
    }
    for (auto& part : AssemblePart(std::move(selected), info)) {
      part.series_number = series_number;
      part.series_description = description;
      std::string prefix;
      if (part_keys.size() > 1) {
        if (echoes.size() > 1) {
          const auto rank = std::find(echoes.begin(), echoes.end(), key.first) - echoes.begin() + 1;
          prefix = "_e" + std::to_string(rank);
        }
        if (!key.second.empty()) prefix += "_" + key.second;
      }
      part.suffix = prefix + part.suffix;
      part.sources = sources;
      parts.push_back(std::move(part));
    }
  }
  return parts;
}

}  // namespace procnode
