#include "nifti/series_to_nifti.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/huge_pages.h"
#include "core/parallel.h"
#include "core/text.h"
#include "core/version.h"
#include "dicom/element_index.h"
#include "dicom/image.h"
#include "dicom/io.h"
#include "volume/geometry.h"
#include "volume/series_slices.h"

namespace procnode {
namespace {

// dcm2niix's vendor names in the sidecar (conversion's vendors, and Hitachi).
std::string VendorName(const std::string& manufacturer) {
  switch (VendorOf(manufacturer)) {
    case Vendor::kSiemens: return "Siemens";
    case Vendor::kPhilips: return "Philips";
    case Vendor::kGE: return "GE";
    case Vendor::kCanon: return "Canon";
    case Vendor::kUIH: return "UIH";
    case Vendor::kOther: break;
  }
  return UpperCase(manufacturer).find("HITACHI") != std::string::npos ? "Hitachi" : manufacturer;
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
    {0x0018, 0x0060, "KVP", Kind::kNumber},
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
  // CT: whether a contrast agent was given (its name is free text, left out): bone attenuation
  // thresholds were set on non-contrast CT.
  if (DicomString(ds, 0x0008, 0x0060) == "CT") sidecar["ContrastBolusAgentPresent"] = !DicomString(ds, 0x0018, 0x0010).empty();
  sidecar["ConversionSoftware"] = "procnode";
  sidecar["ConversionSoftwareVersion"] = kVersion;
  return sidecar;
}

// What distortion and slice-timing correction need about an EPI acquisition, as dcm2niix reads it
// (names in the comments are its BIDS keys); completed per image in EpiKeys.
struct EpiFacts {
  std::optional<double> percent_phase_fov;      // PercentPhaseFOV (0018,0094)
  std::optional<double> acquisition_matrix_pe;  // AcquisitionMatrixPE: (0018,1310), else (0018,9231)
  std::optional<double> bandwidth_pe;           // BandwidthPerPixelPhaseEncode: Siemens (0019,1028) / (0021,1153)
  std::optional<double> parallel_factor;        // ParallelReductionFactorInPlane
  std::optional<double> multiband;              // MultibandAccelerationFactor
  std::optional<int> phase_positive;            // polarity: 1 along the DICOM axis, 0 against it
  std::optional<double> ge_echo_spacing_us;     // GE (0043,102C): echo spacing, microseconds
  std::optional<double> acquisition_duration_ms;  // UIH: TotalReadoutTime when nothing better is known
  bool partial_fourier = false;
  int echo_train_length = 0;
};

// The number after `key` in text such as "p2" (Siemens (0051,1011)), "F:2S" (UIH (0065,100D)) or
// "Unaliased MB2/PE2" (CMRR's ImageComments).
std::optional<double> NumberAfter(const std::string& text, const std::string& key) {
  const auto at = text.find(key);
  if (at == std::string::npos) return std::nullopt;
  std::size_t end = at + key.size();
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
  if (end == at + key.size()) return std::nullopt;
  return std::strtod(text.c_str() + at + key.size(), nullptr);
}

std::optional<double> First(DcmItem& ds, const DcmTagKey& tag, Raw raw = Raw::kText) {
  const auto values = AttributeNumbers(ds, tag, 1, raw, true);
  if (values.empty()) return std::nullopt;
  return values[0];
}

std::string DeepString(DcmItem& ds, const DcmTagKey& tag) {
  DcmElement* found = nullptr;
  OFString text;
  if (ds.findAndGetElement(tag, found, OFTrue).bad() || found == nullptr || found->getOFStringArray(text).bad()) return "";
  return text.c_str();
}

// GE's phase-encoding polarity from its binary user data (0043,102A), as dcm2niix reads it: the
// header's offset at byte 24, its version (5-40) first, an EPI flag, the polarity flag (4:
// flipped) and the slice order (2: bottom up, which reverses the polarity).
std::optional<int> GePolarity(DcmItem& ds) {
  DcmElement* found = FindElement(ds, DcmTagKey(0x0043, 0x102A));
  Uint8* bytes = nullptr;
  if (found == nullptr || found->getUint8Array(bytes).bad() || bytes == nullptr) {
    return std::nullopt;
  }
  const std::size_t length = found->getLength();
  auto u16 = [&](std::size_t at) { return static_cast<int>(bytes[at] | (bytes[at + 1] << 8)); };
  if (length < 916) return std::nullopt;
  const std::size_t offset = static_cast<std::size_t>(u16(24));
  if (length < offset + 916) return std::nullopt;
  float version = 0;
  std::memcpy(&version, bytes + offset, 4);
  if (!(version >= 5.0f && version <= 40.0f)) return std::nullopt;
  std::size_t header = offset, kydir = 0x0394;
  if (version >= 25.002f) header += 0x004c, kydir -= 0x008c;
  if ((u16(header + 0x003a) & 0x0800) == 0) return std::nullopt;  // not EPI
  bool flipped = (u16(header + 0x0030) & 0x0004) != 0;
  if (u16(header + kydir) == 2) flipped = !flipped;  // bottom-up slice order
  return flipped ? 0 : 1;
}

EpiFacts ReadEpiFacts(DcmDataset& ds, const SeriesInfo& info) {
  EpiFacts f;
  f.percent_phase_fov = First(ds, DcmTagKey(0x0018, 0x0094));
  if (const auto matrix = AttributeNumbers(ds, DcmTagKey(0x0018, 0x1310), 4, Raw::kText); matrix.size() == 4) {
    if (matrix[3] > 0) f.acquisition_matrix_pe = matrix[3];
    if (matrix[2] > 0) f.acquisition_matrix_pe = matrix[2];
  }
  if (!f.acquisition_matrix_pe) f.acquisition_matrix_pe = First(ds, DcmTagKey(0x0018, 0x9231));
  if (auto etl = First(ds, DcmTagKey(0x0018, 0x0091)); etl && *etl > 1) f.echo_train_length = static_cast<int>(*etl);
  switch (info.vendor) {
    case Vendor::kSiemens: {
      f.bandwidth_pe = First(ds, DcmTagKey(0x0019, 0x1028), Raw::kFloat64);
      if (!f.bandwidth_pe) f.bandwidth_pe = First(ds, DcmTagKey(0x0021, 0x1153), Raw::kFloat64);
      for (const DcmTagKey& tag : {DcmTagKey(0x0051, 0x1011), DcmTagKey(0x0021, 0x1009)}) {
        if (!f.parallel_factor) f.parallel_factor = NumberAfter(DeepString(ds, tag), "p");
      }
      f.multiband = NumberAfter(DeepString(ds, DCM_ImageComments), "MB");
      if (info.csa) {
        if (auto positive = CsaNumbers(*info.csa, "PhaseEncodingDirectionPositive")) {
          f.phase_positive = static_cast<int>(positive->front());
        }
      }
      if (!f.phase_positive) {
        if (auto positive = First(ds, DcmTagKey(0x0021, 0x111C))) f.phase_positive = *positive == 1 ? 1 : 0;
      }
      break;
    }
    case Vendor::kGE: {
      if (auto asset = AttributeNumbers(ds, DcmTagKey(0x0043, 0x1083), 1, Raw::kText); !asset.empty() && asset[0] > 0) {
        f.parallel_factor = 1.0 / asset[0];
      }
      f.ge_echo_spacing_us = First(ds, DcmTagKey(0x0043, 0x102C));
      f.multiband = First(ds, DcmTagKey(0x0043, 0x10B6));
      const std::string reordering = UpperCase(DeepString(ds, DcmTagKey(0x0018, 0x9034)));
      if (reordering.rfind("LINEAR", 0) == 0) f.phase_positive = 0;
      if (reordering.rfind("REVERSE_LINEAR", 0) == 0) f.phase_positive = 1;
      if (!f.phase_positive) f.phase_positive = GePolarity(ds);
      const std::string options = UpperCase(DicomString(ds, 0x0018, 0x0022));
      f.partial_fourier = options.find("PFF") != std::string::npos || options.find("PFP") != std::string::npos ||
                          UpperCase(DeepString(ds, DcmTagKey(0x0018, 0x9081))) == "YES";
      break;
    }
    case Vendor::kUIH: {
      f.parallel_factor = NumberAfter(DeepString(ds, DcmTagKey(0x0065, 0x100D)), ":");
      if (auto flipped = First(ds, DcmTagKey(0x0065, 0x1058))) f.phase_positive = *flipped == 1 ? 0 : 1;
      f.acquisition_duration_ms = First(ds, DcmTagKey(0x0018, 0x9073), Raw::kFloat64);
      break;
    }
    default:
      f.parallel_factor = First(ds, DcmTagKey(0x0018, 0x9069), Raw::kFloat64);
      break;
  }
  return f;
}

// dcm2niix's keys for preprocessing from `facts` and the image as written (`columns` x `rows`):
// ReconMatrixPE is the reconstructed size along the phase direction; EffectiveEchoSpacing
// 1 / (BandwidthPerPixelPhaseEncode x ReconMatrixPE) (Siemens; GE from its echo spacing, ASSET
// factor and the acquired lines rounded as GE rounds them); TotalReadoutTime EffectiveEchoSpacing
// x (ReconMatrixPE - 1); PhaseEncodingDirection where the polarity is known (2D only, the rows
// flipped on output: along the DICOM columns reads as j-), else PhaseEncodingAxis.
void EpiKeys(const EpiFacts& f, const SeriesInfo& info, int64_t columns, int64_t rows, nlohmann::json& sidecar) {
  if (sidecar.value("Modality", "") != "MR") return;
  const std::string& phase = info.phase_direction;
  if (f.multiband && *f.multiband > 1) sidecar["MultibandAccelerationFactor"] = static_cast<int>(std::lround(*f.multiband));
  if (f.percent_phase_fov) sidecar["PercentPhaseFOV"] = *f.percent_phase_fov;
  if (f.acquisition_matrix_pe) sidecar["AcquisitionMatrixPE"] = static_cast<int>(std::lround(*f.acquisition_matrix_pe));
  double recon = f.acquisition_matrix_pe.value_or(0);
  if (columns > 0 && rows > 0) {
    if (columns == rows || phase == "COL") recon = static_cast<double>(rows);
    else if (phase == "ROW") recon = static_cast<double>(columns);
  }
  if (recon > 0) sidecar["ReconMatrixPE"] = static_cast<int>(recon);
  if (f.bandwidth_pe) sidecar["BandwidthPerPixelPhaseEncode"] = *f.bandwidth_pe;
  if (f.parallel_factor && *f.parallel_factor > 1) sidecar["ParallelReductionFactorInPlane"] = *f.parallel_factor;
  double spacing = 0;
  if (recon > 0 && f.bandwidth_pe && *f.bandwidth_pe > 0) spacing = 1.0 / (*f.bandwidth_pe * recon);
  if (info.vendor == Vendor::kGE && f.ge_echo_spacing_us && *f.ge_echo_spacing_us > 0 && recon > 1 && f.parallel_factor &&
      *f.parallel_factor > 0 && f.acquisition_matrix_pe && *f.acquisition_matrix_pe > 1) {
    const double round = f.partial_fourier ? 4.0 : 2.0;
    const double lines = std::ceil(*f.acquisition_matrix_pe / *f.parallel_factor / round) * round;
    const double readout = (lines - 1.0) * *f.ge_echo_spacing_us * 1e-6;
    spacing = readout / (*f.acquisition_matrix_pe - 1.0);
  }
  if (spacing > 0) sidecar["EffectiveEchoSpacing"] = spacing;
  if (info.vendor == Vendor::kUIH && spacing <= 0 && f.acquisition_duration_ms) {
    sidecar["TotalReadoutTime"] = *f.acquisition_duration_ms / 1000.0;
  } else if (recon > 0 && spacing > 0) {
    sidecar["TotalReadoutTime"] = spacing * (recon - 1.0);
  }
  if (!info.mr_3d && (phase == "ROW" || phase == "COL")) {
    const bool along_rows = phase == "ROW";
    if (f.phase_positive) {
      const bool negative = along_rows ? *f.phase_positive == 0 : *f.phase_positive == 1;
      sidecar["PhaseEncodingDirection"] = std::string(along_rows ? "i" : "j") + (negative ? "-" : "");
    } else {
      sidecar["PhaseEncodingAxis"] = along_rows ? "i" : "j";
    }
  }
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
    const ReuseSampleBuffers reuse;  // each slice read into the pages the last one left
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

// What the diffusion weighting of a part's volumes makes: the gradient table, and the volumes
// in output order (derived isotropic volumes last when they are split off, `derived` of them).
struct GradientPlan {
  std::optional<DiffusionGradients> gradients;
  std::vector<std::size_t> volume_order;
  std::size_t derived = 0;
  std::vector<std::string> warnings;
};

// dcm2niix's rules (nii_saveDTI): a table only where the weighting varies across volumes (or the
// lowest b is clearly above zero, or the first volume has a direction); Philips and GE trace or
// ADC volumes (a b-value without a direction) split off unless they are all but one of the
// series; vectors in the voxel axes of `srow` (RAS), normalised; where the axes have a positive
// determinant (only a slice order against the normal), y and z change sign as dcm2niix writes
// them; GE's vectors from its own axes, b-values rescaled by the squared length of a short
// vector and rounded to 5 s/mm2 as dcm2niix does.
GradientPlan PlanGradients(const ArrangedPart& part, const SeriesInfo& info, const Affine& srow, std::size_t instances) {
  GradientPlan plan;
  const std::size_t n = part.volumes;
  plan.volume_order.resize(n);
  std::iota(plan.volume_order.begin(), plan.volume_order.end(), 0);
  // Each volume's weighting (a volume without one: b=0, no direction).
  std::vector<DiffusionWeighting> vx(n);
  bool any = false, from_bmatrix = false;
  for (std::size_t t = 0; t < n; ++t) {
    if (const auto& w = part.slices[part.position_starts[0] + t].diffusion) {
      vx[t] = *w;
      any = true;
      from_bmatrix = from_bmatrix || w->from_bmatrix;
    }
  }
  if (!any || (n < 2 && instances < 2)) return plan;
  const double threshold = info.vendor == Vendor::kSiemens ? 50.0 : 6.0;
  bool b_varies = false;
  double lowest = vx[0].b;
  for (const auto& e : vx) {
    b_varies = b_varies || e.b != vx[0].b;
    lowest = std::min(lowest, e.b);
  }
  b_varies = b_varies || lowest > threshold || vx[0].direction.has_value();
  if (!b_varies) {
    bool vector_varies = false;
    for (const auto& e : vx) vector_varies = vector_varies || e.direction != vx[0].direction;
    if (!vector_varies) return plan;
    bool zero_vector = false;
    for (auto& e : vx) {
      if (!e.direction) e.b = 0, zero_vector = true;
    }
    if (!zero_vector) {
      plan.warnings.push_back("no gradient table: one b-value (" + ShortNumber(vx[0].b) + ") for every volume");
      return plan;
    }
  }
  // Derived isotropic volumes.
  std::vector<bool> derived(n, false);
  std::size_t derived_count = 0;
  for (std::size_t t = 0; t < n; ++t) {
    auto& e = vx[t];
    const bool no_direction = e.b > 0 && (!e.direction || e.isotropic);
    if (!no_direction) continue;
    if (info.vendor == Vendor::kPhilips || (info.vendor == Vendor::kGE && info.ge_diffusion_directions == 0.0)) {
      derived[t] = true, ++derived_count;
    } else if (info.vendor == Vendor::kGE) {
      e.b = 0;  // GE's raw b=0 images carry the nominal b-value
    }
  }
  const bool all_isotropic = derived_count == n;
  if (derived_count > 0 && n - derived_count < 2) derived_count = 0;  // b=0 + trace pairs, isotropic series: kept whole
  if (derived_count > 0) {
    std::vector<std::size_t> order;
    for (std::size_t t = 0; t < n; ++t) {
      if (!derived[t]) order.push_back(t);
    }
    for (std::size_t t = 0; t < n; ++t) {
      if (derived[t]) order.push_back(t);
    }
    plan.volume_order = order;
    plan.derived = derived_count;
    plan.warnings.push_back(std::to_string(derived_count) + " derived isotropic (trace or ADC) volume(s) left out of the "
                            "diffusion image; every volume, those last, is in the _ADC part");
  }
  // Voxel axes in LPS, unit length.
  std::array<Vec3, 3> axes{};
  for (int i = 0; i < 3; ++i) {
    Vec3 a{-srow[0][i], -srow[1][i], srow[2][i]};
    const double length = Norm(a);
    for (auto& c : a) c /= length;
    axes[i] = a;
  }
  const double determinant = Dot(Cross(axes[0], axes[1]), axes[2]);
  const Vec3 row = part.row_dir, col = part.col_dir, normal = part.normal;
  // Each voxel axis lies along one of row, column, normal (`along`), either way (`sign`).
  std::array<int, 3> along{};
  std::array<double, 3> sign{};
  for (int i = 0; i < 3; ++i) {
    double best = 0;
    for (int k = 0; k < 3; ++k) {
      const double dot = Dot(axes[i], k == 0 ? row : k == 1 ? col : normal);
      if (std::abs(dot) > std::abs(best)) along[i] = k, best = dot;
    }
    sign[i] = best < 0 ? -1 : 1;
  }
  DiffusionGradients table;
  const std::size_t kept = n - plan.derived;
  for (std::size_t k = 0; k < kept; ++k) {
    DiffusionWeighting e = vx[plan.volume_order[k]];
    Vec3 out{0, 0, 0};
    if (e.b > 0 && e.direction) {
      Vec3& direction = *e.direction;
      if (e.frame == DiffusionWeighting::Frame::kGE) {
        // GE's vectors: rows swizzled for row phase encoding, axes flipped by slice orientation.
        const double length = Norm(direction);
        if (length > 0.03 && length < 0.97) {
          const double scaled = e.b * length * length;
          const double b = scaled > 0 && scaled < 5 ? 5 : std::floor((scaled + 2.5) / 5) * 5;
          for (auto& c : direction) c *= b == 0 ? 0 : std::sqrt(e.b / b);
          e.b = b;
        }
        Vec3 v = direction;
        if (info.phase_direction != "COL") v = {v[1], -v[0], v[2]};
        int axis = 0;
        for (int i = 1; i < 3; ++i) {
          if (std::abs(normal[i]) > std::abs(normal[axis])) axis = i;
        }
        if (axis == 0) v[0] = -v[0], v[1] = -v[1];  // sagittal
        if (axis == 1) v[1] = -v[1], v[2] = -v[2];  // coronal
        if (axis == 2) v[2] = -v[2];                // axial
        out = {-v[0], v[1], -v[2]};                  // y read out reversed, then every sign (dcm2niix)
      } else {
        // Components along the DICOM row, column and normal, in single precision as dcm2niix
        // computes them (so the text matches its digits); UIH gives them so already.
        std::array<float, 3> c{static_cast<float>(direction[0]), static_cast<float>(direction[1]),
                               static_cast<float>(direction[2])};
        if (e.frame == DiffusionWeighting::Frame::kPatient) {
          const std::array<float, 3> g = c;
          for (int k = 0; k < 3; ++k) {
            const Vec3& direction = k == 0 ? row : k == 1 ? col : normal;
            std::array<float, 3> d{static_cast<float>(direction[0]), static_cast<float>(direction[1]),
                                   static_cast<float>(direction[2])};
            const float length = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
            for (auto& x : d) x /= length;
            c[k] = g[0] * d[0] + g[1] * d[1] + g[2] * d[2];
          }
          const float length = std::sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
          if (length > 0) {
            for (auto& x : c) x /= length;
          }
        }
        for (int i = 0; i < 3; ++i) out[i] = sign[i] * static_cast<double>(c[along[i]]);
        if (determinant > 0) out[1] = -out[1], out[2] = -out[2];
      }
    }
    for (auto& c : out) {
      if (c == 0) c = 0;  // no "-0"
    }
    table.bvals.push_back(e.b);
    if (!all_isotropic) table.bvecs.push_back(out);
  }
  if (from_bmatrix) {
    plan.warnings.push_back("gradient directions derived from the b-matrix: their polarity is unknown (eddy users beware)");
  }
  plan.gradients = std::move(table);
  return plan;
}

// One NIfTI image (and its sidecar) from one arranged part of the series.
// Most parts give one image; a diffusion series with derived isotropic volumes two (see
// NiftiConversion::gradients).
std::vector<NiftiConversion> WritePart(ArrangedPart part, const nlohmann::json& sidecar, const EpiFacts& facts,
                                       const SeriesInfo& info, std::size_t instances) {
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
  const DicomImage& head = slices.front().image;  // rows may have grown with tilt correction
  if (!result.warnings.empty()) result.sidecar["ConversionWarnings"] = result.warnings;

  // Slice timing (Siemens mosaics and XA enhanced frames, UIH grids), in NIfTI slice order, as
  // dcm2niix chooses it: the first volume's, unless its range is implausible (none, or beyond the
  // TR) or differs from the second volume's (CMRR and XA write bogus times into some first
  // volumes), then the second's, relative to its earliest slice.
  auto volume_times = [&](std::size_t t) -> std::optional<std::vector<double>> {
    if (positions < 2 || t >= volumes) return std::nullopt;
    std::vector<double> times;
    for (std::size_t p = 0; p < positions; ++p) {
      const auto& timing = slices[position_starts[p] + t].timing_ms;
      if (!timing) return std::nullopt;
      times.push_back(*timing);
    }
    return times;
  };
  auto range = [](const std::vector<double>& times) {
    return *std::max_element(times.begin(), times.end()) - *std::min_element(times.begin(), times.end());
  };
  const double tr_ms = repetition_time.value_or(0);
  std::optional<std::vector<double>> times = volume_times(0);
  if (!times && info.ge_slice_order && positions >= 2 && volumes >= 2) {
    // GE (dcm2niix's model; a time series only): times in acquisition order, which is the first
    // volume's instance order, then placed at each slice's position in the output.
    const auto& order = *info.ge_slice_order;
    std::vector<std::size_t> by_instance(positions);
    for (std::size_t p = 0; p < positions; ++p) by_instance[p] = p;
    std::stable_sort(by_instance.begin(), by_instance.end(), [&](std::size_t a, std::size_t b) {
      return slices[position_starts[a]].image.instance_number < slices[position_starts[b]].image.instance_number;
    });
    const auto acquired = GeSliceTimes(positions, order.multiband, order.tr_ms, order.delay_ms, order.interleaved, order.software);
    if (!acquired.empty()) {
      times.emplace(positions);
      for (std::size_t rank = 0; rank < positions; ++rank) (*times)[by_instance[rank]] = acquired[rank];
      // Multi-phase EPI's group delay follows each volume: dcm2niix counts it in the TR.
      if (order.tr_ms != repetition_time.value_or(order.tr_ms)) result.sidecar["RepetitionTime"] = order.tr_ms / 1000.0;
    }
  }
  if (times) {
    const auto second = volume_times(1);
    const bool plausible = range(*times) > 0 && (tr_ms <= 0 || *std::max_element(times->begin(), times->end()) <= tr_ms);
    const bool agrees = !second || std::abs(range(*second) - range(*times)) <= 1e-3;
    if ((!plausible || !agrees) && second && range(*second) > 0 && (tr_ms <= 0 || range(*second) <= tr_ms)) {
      const double earliest = *std::min_element(second->begin(), second->end());
      times = *second;
      for (auto& t : *times) t -= earliest;
    }
  }
  std::size_t together = 0;  // slices excited together share the earliest time: the multiband factor
  if (times) {
    for (auto& t : *times) t /= 1000.0;
    result.sidecar["SliceTiming"] = *times;
    // dcm2niix takes slice_code from the CSA slice order of Siemens mosaics only.
    if (info.mosaic) result.image.slice_code = SliceCode(*times);
    const double earliest = *std::min_element(times->begin(), times->end());
    for (const double t : *times) together += std::abs(t - earliest) < 1e-4 ? 1 : 0;
  }
  EpiKeys(facts, info, head.columns, head.rows, result.sidecar);
  if (!result.sidecar.contains("MultibandAccelerationFactor") && together > 1 && together < times->size()) {
    result.sidecar["MultibandAccelerationFactor"] = together;
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

  GradientPlan plan = PlanGradients(part, info, out.srow, instances);
  const std::vector<std::size_t>& volume_order = plan.volume_order;
  result.gradients = std::move(plan.gradients);
  for (auto& warning : plan.warnings) result.warnings.push_back(std::move(warning));

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
      for (std::size_t p = 0; p < positions; ++p) order.push_back(position_starts[p] + volume_order[t]);
    }
    ResizeOnHugePages(out.voxels, total_bytes);
    char* voxels = out.voxels.data();
    const bool to_float = !same_scaling;
    if (width == 1) PlaceSlices<uint8_t>(slices, order, info, step, base, columns, rows, to_float, voxels);
    if (width == 2) PlaceSlices<uint16_t>(slices, order, info, step, base, columns, rows, to_float, voxels);
    if (width == 4) PlaceSlices<uint32_t>(slices, order, info, step, base, columns, rows, to_float, voxels);
  } else {
    LoadDeferred(slices, info);
  }
  if (same_scaling && head.sample_type == SampleType::kUint16) {
    // dcm2niix's default ("-l o", original): unsigned 16-bit stays unsigned unless fewer than 16
    // bits are stored (then every value fits int16, NIfTI's usual 16-bit type).
    int64_t highest = 0;
    for (const auto& s : slices) highest = std::max(highest, s.image.max_sample);
    out.datatype = head.bits_stored < 16 && highest <= 32767 ? kDtInt16 : kDtUint16;
  }
  // Each slice's samples are freed once copied, so the peak stays near one volume.
  if (!place) ReserveOnHugePages(out.voxels, total_bytes);
  std::vector<float> scaled_row(static_cast<std::size_t>(columns));
  for (std::size_t t = 0; t < volumes && !place; ++t) {
    for (std::size_t p = 0; p < positions; ++p) {
      Slice& s = slices[position_starts[p] + volume_order[t]];
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
  out.spatial = !part.geometry_assumed;  // as dcm2niix: a guessed geometry is not claimed as the scanner's
  if (part.spacing_split || !plan.warnings.empty()) result.sidecar["ConversionWarnings"] = result.warnings;
  std::vector<NiftiConversion> images;
  if (plan.derived > 0) {
    // The diffusion-weighted volumes alone: the first ones of the reordered image.
    NiftiConversion weighted;
    weighted.sidecar = result.sidecar;
    weighted.warnings = result.warnings;
    weighted.suffix = result.suffix;
    weighted.gradients = std::move(result.gradients);
    result.gradients.reset();
    std::string all;
    all.swap(out.voxels);
    weighted.image = out;  // the header
    out.voxels.swap(all);
    weighted.image.dims[3] = static_cast<int64_t>(volumes - plan.derived);
    if (weighted.image.dims[3] < 2) weighted.image.dimensions = 3;
    weighted.image.voxels.assign(out.voxels, 0, out.voxels.size() / volumes * (volumes - plan.derived));
    images.push_back(std::move(weighted));
    result.suffix += "_ADC";
  }
  images.push_back(std::move(result));
  return images;
}


}  // namespace

namespace {

// A 3D image on the volume's grid: `count` voxels of `bytes_per_voxel` from `data`.
NiftiImage ImageOnGrid(const Volume& v, const void* data, std::size_t count, std::size_t bytes_per_voxel, int16_t datatype,
                       const std::string& what, const std::string& description) {
  if (count != v.dims[0] * v.dims[1] * v.dims[2]) {
    throw Error(ErrorCode::kInvalidInput, what + ": " + std::to_string(count) + " values for a " + std::to_string(v.dims[0]) +
                                              " x " + std::to_string(v.dims[1]) + " x " + std::to_string(v.dims[2]) + " volume");
  }
  NiftiImage image;
  image.dims = {static_cast<int64_t>(v.dims[0]), static_cast<int64_t>(v.dims[1]), static_cast<int64_t>(v.dims[2]), 1, 1};
  image.dimensions = 3;
  image.pixdim = {v.spacing[0], v.spacing[1], v.spacing[2], 0};
  image.datatype = datatype;
  image.srow = VolumeAffine(v);
  image.descrip = description.substr(0, 79);
  image.voxels.assign(static_cast<const char*>(data), count * bytes_per_voxel);
  return image;
}

}  // namespace

NiftiImage LabelNiftiImage(const Volume& v, const std::vector<uint8_t>& labels) {
  return ImageOnGrid(v, labels.data(), labels.size(), 1, kDtUint8, "label image", "procnode labels");
}

NiftiImage FloatNiftiImage(const Volume& v, const std::vector<float>& values, const std::string& description) {
  return ImageOnGrid(v, values.data(), values.size(), sizeof(float), kDtFloat32, "derived image", description);
}

SeriesVolume NiftiSeriesVolume(StudySource& source, const SeriesRef& series, const LoadCallbacks& callbacks) {
  auto parts = ConvertSeriesToNifti(source, series, callbacks);
  NiftiConversion& part = parts.front();
  const NiftiImage& image = part.image;
  if (!image.spatial) {  // results placed on a guessed grid would not overlay the images
    throw Error(ErrorCode::kInvalidInput, "series " + series.id + ": " + part.warnings.front() +
                                              "; processors need the scanner's geometry");
  }
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
  result.sidecar = std::move(part.sidecar);
  if (!result.sources.empty()) result.series_instance_uid = result.sources.front().series_instance_uid;
  result.study = ReadStudyIdentity(source, series.instance_ids.front(), AcquisitionKeywords(), &result.acquisition);
  return result;
}

namespace {

std::string GradientNumber(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", static_cast<double>(static_cast<float>(value)));
  return text;
}

}  // namespace

std::string BvalText(const DiffusionGradients& gradients) {
  std::string text;
  for (std::size_t i = 0; i < gradients.bvals.size(); ++i) text += (i ? " " : "") + GradientNumber(gradients.bvals[i]);
  return text + "\n";
}

std::string BvecText(const DiffusionGradients& gradients) {
  std::string text;
  for (int axis = 0; axis < 3; ++axis) {
    for (std::size_t i = 0; i < gradients.bvecs.size(); ++i) text += (i ? " " : "") + GradientNumber(gradients.bvecs[i][axis]);
    text += "\n";
  }
  return text;
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
  EpiFacts facts;
  SeriesSlices read = ReadSeriesSlices(source, series, callbacks, [&sidecar, &facts](DcmDataset& ds, const SeriesInfo& info) {
    sidecar = Sidecar(ds);
    facts = ReadEpiFacts(ds, info);
    // dcm2niix derives Philips' bandwidth from private attributes; the public one would disagree.
    if (info.vendor == Vendor::kPhilips) sidecar.erase("PixelBandwidth");
    if (!info.phase_direction.empty()) sidecar["InPlanePhaseEncodingDirectionDICOM"] = info.phase_direction;
    // Enhanced objects keep it in the shared functional groups.
    if (!DicomNumber(ds, 0x0018, 0x0080) && info.repetition_time) sidecar["RepetitionTime"] = *info.repetition_time / 1000.0;
  });
  std::vector<NiftiConversion> parts;
  for (auto& part : SplitParts(std::move(read.slices))) {
    for (auto& arranged : ArrangePart(std::move(part.slices), read.info)) {
      for (auto& conversion : WritePart(std::move(arranged), sidecar, facts, read.info, read.sources.size())) {
        if (!series.grouping_warning.empty()) {
          conversion.warnings.insert(conversion.warnings.begin(), series.grouping_warning);
          conversion.sidecar["ConversionWarnings"] = conversion.warnings;
        }
        conversion.series_number = read.series_number;
        conversion.series_description = read.description;
        conversion.suffix = part.suffix + conversion.suffix;
        conversion.sources = read.sources;
        parts.push_back(std::move(conversion));
      }
    }
  }
  return parts;
}

}  // namespace procnode
