#include "volume/series_slices.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/parallel.h"
#include "core/text.h"
#include "dicom/element_index.h"
#include "dicom/folder_source.h"
#include "dicom/ge_protocol.h"
#include "dicom/io.h"

namespace procnode {
namespace {

// Images at least this large are read in two passes (see ReadSeriesSlices); smaller ones, whose
// files the folder scan keeps in memory, in one.
constexpr double kDeferredPlaneBytes = 64 << 10;

// The Siemens CSA image header of `ds`, when it has one.
std::optional<SiemensCsa> CsaImageHeader(DcmDataset& ds, const std::string& name) {
  const Uint8* bytes = nullptr;
  unsigned long length = 0;
  if (ds.findAndGetUint8Array(DcmTagKey(0x0029, 0x1010), bytes, &length).bad() || bytes == nullptr) return std::nullopt;
  return ParseSiemensCsa(std::string_view(reinterpret_cast<const char*>(bytes), length), name);
}

// GE's slice timing model, as dcm2niix decides it (nii_dicom_batch sliceTimingGE): which EPI
// variant the series is (the pulse sequence names (0019,109C/109E), fMRI's group delay (0043,107C),
// the block's IOPT), then its order, HyperBand factor and delay. nullopt where dcm2niix writes no
// times: no block, no version, diffusion, multi-phase EPI with variable delays, other sequences.
std::optional<SeriesInfo::GeSliceOrder> GeSliceOrderOf(DcmDataset& ds) {
  const Uint8* bytes = nullptr;
  unsigned long length = 0;
  if (ds.findAndGetUint8Array(DcmTagKey(0x0025, 0x101B), bytes, &length).bad() || bytes == nullptr) return std::nullopt;
  const auto protocol = ParseGeProtocol(std::string_view(reinterpret_cast<const char*>(bytes), length));
  if (!protocol) return std::nullopt;
  const std::string versions = DicomString(ds, 0x0018, 0x1020);
  const auto software = versions.size() >= 10 ? ParseGeSoftwareVersion(versions) : std::nullopt;
  const auto tr = DicomNumber(ds, 0x0018, 0x0080);
  if (!software || !tr || *tr <= 0 || DicomString(ds, 0x0018, 0x0023) == "3D") return std::nullopt;
  auto text = [&](const char* key) {
    const auto it = protocol->find(key);
    return it == protocol->end() ? std::string() : it->second;
  };
  auto number = [&](const char* key) -> std::optional<double> {
    const std::string value = text(key);
    char* end = nullptr;
    const double parsed = std::strtod(value.c_str(), &end);
    if (value.empty() || end == value.c_str() || !std::isfinite(parsed)) return std::nullopt;
    return parsed;
  };
  const std::string options = text("IOPT");
  // dcm2niix's epiVersionGE: 0 multi-phase epi, 1 epiRT (fMRI), 2 epi2 (diffusion), 3 pepolar.
  const std::string sequence = DicomString(ds, 0x0019, 0x109C), internal = DicomString(ds, 0x0019, 0x109E);
  int variant = -1;
  if (sequence.find("epi_pepolar") != std::string::npos) variant = 3;
  else if (sequence.find("epi2") != std::string::npos) variant = 2;
  else if (sequence.find("epiRT") != std::string::npos) variant = 1;
  else if (sequence.find("epi") != std::string::npos) variant = 0;
  if (variant < 3 && internal == "EPI" && variant != 1) variant = 0;
  std::optional<double> fmri_delay_s;
  if (auto delay = AttributeNumbers(ds, DcmTagKey(0x0043, 0x107C), 1, Raw::kFloat32); !delay.empty()) {
    fmri_delay_s = delay[0];
    variant = 1;
  }
  SeriesInfo::GeSliceOrder order;
  order.software = *software;
  order.tr_ms = *tr;
  order.interleaved = true;  // dcm2niix's default; only fMRI reads SLICEORDER
  const auto hyperband = AttributeNumbers(ds, DcmTagKey(0x0043, 0x10B6), 1, Raw::kText);
  const int multiband_attribute = hyperband.empty() ? 1 : static_cast<int>(hyperband[0]);
  order.multiband = std::max({1, multiband_attribute, static_cast<int>(number("MBACCEL").value_or(1))});
  double block_delay_ms = number("DELACQNOAV").value_or(0) * 1000.0;
  if (options.find("MPh") != std::string::npos) {
    if (text("DELACQ") == "Minimum") block_delay_ms = 0;
    if (options.find("MPhVar") != std::string::npos) block_delay_ms = -1000;
  }
  if (variant >= 3) {
    order.delay_ms = fmri_delay_s.value_or(0) * 1000.0;  // pepolar: dcm2niix's experimental handling
  } else if (variant == 1 || options.find("FMRI") != std::string::npos) {
    const auto slice_order = number("SLICEORDER");
    order.interleaved = slice_order.value_or(1) != 0;
    order.delay_ms = fmri_delay_s.value_or(0) * 1000.0;
  } else if (variant == 0 || options.find("MPh") != std::string::npos) {
    if (block_delay_ms < -500) return std::nullopt;  // variable delays: unsupported
    if (block_delay_ms > 0) order.tr_ms += block_delay_ms, order.delay_ms = block_delay_ms;
  } else {
    return std::nullopt;  // diffusion (epi2, EPI2, DIFF: gradient cycling unknown) and anything else
  }
  return order;
}

// Tile k of an image holding several slices side by side (`across` tiles to a row, filled row by
// row: Siemens mosaics, UIH grids), as a slice of its own: the image's attributes, the tile's samples.
Slice CutTile(const DicomImage& image, long k, long across, long tile_rows, long tile_columns, const std::string& label) {
  Slice slice;
  DicomImage& tile = slice.image;
  tile.name = image.name + " (" + label + " " + std::to_string(k + 1) + ")";
  tile.rows = tile_rows, tile.columns = tile_columns, tile.frames = 1;
  tile.bits_allocated = image.bits_allocated, tile.bits_stored = image.bits_stored;
  tile.is_signed = image.is_signed, tile.sample_type = image.sample_type;
  tile.orientation = image.orientation;
  tile.pixel_spacing = image.pixel_spacing, tile.has_pixel_spacing = image.has_pixel_spacing;
  tile.slice_thickness = image.slice_thickness, tile.slope = image.slope, tile.intercept = image.intercept;
  tile.instance_number = image.instance_number;
  slice.order = {image.instance_number, 0, 0};
  const std::size_t width = image.samples.size() / image.SampleCount();
  const std::size_t tile_row_bytes = static_cast<std::size_t>(tile_columns) * width;
  tile.samples.resize(tile_row_bytes * tile_rows);
  const long top = (k / across) * tile_rows, left = (k % across) * tile_columns;
  for (long r = 0; r < tile_rows; ++r) {
    std::memcpy(tile.samples.data() + r * tile_row_bytes, image.samples.data() + ((top + r) * image.columns + left) * width,
                tile_row_bytes);
  }
  tile.max_sample = 0;
  for (std::size_t i = 0; i < tile.SampleCount(); ++i) tile.max_sample = std::max(tile.max_sample, tile.Sample(i));
  return slice;
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

  std::vector<Slice> out;
  for (long k = 0; k < slices; ++k) {
    Slice slice = CutTile(mosaic, k, tiles, tile_rows, tile_columns, "mosaic slice");
    slice.image.position = Vec3{first[0] + normal[0] * spacing * k, first[1] + normal[1] * spacing * k,
                                first[2] + normal[2] * spacing * k};
    if (static_cast<std::size_t>(k) < times.size()) slice.timing_ms = times[k];
    out.push_back(std::move(slice));
  }
  SampleBuffer().swap(mosaic.samples);
  return out;
}

// The vector as given (vendors' own lengths matter to GE's b-value scaling), or none when absent or zero.
std::optional<Vec3> NonZeroOrNone(const std::vector<double>& v) {
  if (v.size() != 3) return std::nullopt;
  const double length = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (!(length > 1e-6)) return std::nullopt;
  return Vec3{v[0], v[1], v[2]};
}

// The PS3.3 MR Diffusion macro (C.8.13.5.9) in `item`: b-value, directionality, the gradient
// (Diffusion Gradient Direction Sequence, or the attribute itself in some classic images), and
// where only the b-matrix is given, its principal direction (a rank-one b-matrix is b g g^T).
std::optional<DiffusionWeighting> StandardDiffusion(DcmItem& item) {
  const auto b = DicomNumber(item, DcmTagKey(0x0018, 0x9087));
  if (!b) return std::nullopt;
  DiffusionWeighting w;
  w.b = std::max(0.0, *b);
  const std::string directionality = UpperCase(DicomString(item, DcmTagKey(0x0018, 0x9075)));
  w.isotropic = directionality == "ISOTROPIC";
  DcmItem* gradient = nullptr;
  DcmItem& holder = item.findAndGetSequenceItem(DcmTagKey(0x0018, 0x9076), gradient, 0).good() && gradient ? *gradient : item;
  if (!w.isotropic && directionality != "NONE") {
    w.direction = NonZeroOrNone(AttributeNumbers(holder, DcmTagKey(0x0018, 0x9089), 3, Raw::kFloat64));
    DcmItem* matrix = nullptr;
    if (!w.direction && w.b > 0 && item.findAndGetSequenceItem(DcmTagKey(0x0018, 0x9601), matrix, 0).good() && matrix) {
      std::array<double, 6> m{};  // xx xy xz yy yz zz
      bool complete = true;
      for (int k = 0; k < 6 && complete; ++k) {
        auto v = DicomNumber(*matrix, DcmTagKey(0x0018, static_cast<Uint16>(0x9602 + k)));
        complete = v.has_value();
        if (v) m[k] = *v;
      }
      if (complete) {
        const double full[3][3] = {{m[0], m[1], m[2]}, {m[1], m[3], m[4]}, {m[2], m[4], m[5]}};
        int k = 0;
        for (int i = 1; i < 3; ++i) {
          if (full[i][i] > full[k][k]) k = i;
        }
        if (full[k][k] > 0) {
          const double scale = std::sqrt(full[k][k]);
          const Vec3 g{full[0][k] / scale, full[1][k] / scale, full[2][k] / scale};  // sqrt(b) g
          const double length = Norm(g);
          if (length > 0) w.direction = Vec3{g[0] / length, g[1] / length, g[2] / length};
          w.from_bmatrix = w.direction.has_value();
        }
      }
    }
  }
  return w;
}

// One image's (or one frame's) diffusion weighting: the standard macro (per frame, shared, or at
// the top level of a classic image), else the vendor's private attributes, read as dcm2niix
// reads them. GE and UIH are read from their private attributes first: GE leaves the standard
// b-value out of its b=0 images, and UIH's standard direction is not the one dcm2niix uses.
std::optional<DiffusionWeighting> ReadDiffusion(DcmItem& ds, DcmItem* macro, Vendor vendor, const std::optional<SiemensCsa>& csa) {
  auto standard = [&]() -> std::optional<DiffusionWeighting> {
    if (macro != nullptr) return StandardDiffusion(*macro);
    DcmItem* item = nullptr;
    if (ds.findAndGetSequenceItem(DcmTagKey(0x0018, 0x9117), item, 0).good() && item != nullptr) {
      if (auto w = StandardDiffusion(*item)) return w;
    }
    return StandardDiffusion(ds);
  };
  switch (vendor) {
    case Vendor::kGE: {
      const auto b = AttributeNumbers(ds, DcmTagKey(0x0043, 0x1039), 1, Raw::kText);
      if (b.empty()) break;
      DiffusionWeighting w;
      w.b = std::fmod(b[0], 1e9);  // GE adds 1e9 as a flag to some b-values
      std::vector<double> v;
      for (Uint16 e : {0x10BB, 0x10BC, 0x10BD}) {
        auto one = AttributeNumbers(ds, DcmTagKey(0x0019, e), 1, Raw::kText);
        if (one.empty()) break;
        v.push_back(one[0]);
      }
      if (v.size() == 3 && std::abs(v[0]) + std::abs(v[1]) + std::abs(v[2]) > 1e-6) w.direction = Vec3{v[0], v[1], v[2]};
      w.frame = DiffusionWeighting::Frame::kGE;
      return w;
    }
    case Vendor::kUIH: {
      const auto b = AttributeNumbers(ds, DcmTagKey(0x0065, 0x1009), 1, Raw::kFloat64);
      if (b.empty()) break;
      DiffusionWeighting w;
      w.b = std::max(0.0, b[0]);
      w.direction = NonZeroOrNone(AttributeNumbers(ds, DcmTagKey(0x0065, 0x1037), 3, Raw::kFloat64));
      w.frame = DiffusionWeighting::Frame::kImage;
      return w;
    }
    default: break;
  }
  if (auto w = standard()) return w;
  if (vendor == Vendor::kSiemens) {
    std::optional<double> b;
    std::vector<double> v;
    if (csa) {
      if (auto values = CsaNumbers(*csa, "B_value")) b = values->front();
      if (auto values = CsaNumbers(*csa, "DiffusionGradientDirection"); values && values->size() >= 3) {
        v.assign(values->begin(), values->begin() + 3);
      }
    }
    if (!b) {
      const auto values = AttributeNumbers(ds, DcmTagKey(0x0019, 0x100C), 1, Raw::kText);
      if (!values.empty()) b = values[0];
      v = AttributeNumbers(ds, DcmTagKey(0x0019, 0x100E), 3, Raw::kFloat64);
    }
    if (!b) return std::nullopt;
    DiffusionWeighting w;
    w.b = std::max(0.0, *b);
    w.direction = NonZeroOrNone(v);
    return w;
  }
  if (vendor == Vendor::kPhilips) {
    const auto b = AttributeNumbers(ds, DcmTagKey(0x2001, 0x1003), 1, Raw::kFloat32);
    if (b.empty()) return std::nullopt;
    DiffusionWeighting w;
    w.b = std::max(0.0, b[0]);
    std::vector<double> v;
    for (Uint16 e : {0x10B0, 0x10B1, 0x10B2}) {  // RL, AP, FH: patient x, y, z
      auto one = AttributeNumbers(ds, DcmTagKey(0x2005, e), 1, Raw::kFloat32);
      if (one.empty()) break;
      v.push_back(one[0]);
    }
    w.direction = NonZeroOrNone(v);
    w.isotropic = UpperCase(DicomString(ds, DcmTagKey(0x2001, 0x1004))) == "I";
    return w;
  }
  return std::nullopt;
}

// Seconds since midnight of a DICOM TM value (HHMMSS.frac), computed in single precision as
// dcm2niix computes it (its UIH slice times keep that rounding).
std::optional<float> TimeOfDaySingle(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const float hhmmss = std::strtof(text.c_str(), &end);
  if (end == text.c_str() || !std::isfinite(hhmmss)) return std::nullopt;
  const int hours = static_cast<int>(hhmmss / 10000.0f);
  const float rest = hhmmss - static_cast<float>(hours) * 10000.0f;
  const int minutes = static_cast<int>(rest / 100.0f);
  const float seconds = rest - static_cast<float>(minutes) * 100.0f;
  return static_cast<float>(hours) * 3600.0f + static_cast<float>(minutes) * 60.0f + seconds;
}

// Splits a United Imaging grid ("VFRAME": the slices of one volume tiled in one image, their
// count in (0065,1050), each slice's position and acquisition time in an item of (0065,1051)):
// ceil(sqrt(N)) tiles across and as many rows as needed, filled row by row (dcm2niix's layout).
std::vector<Slice> UnpackUihGrid(DcmDataset& ds, DicomImage& grid) {
  const std::string& name = grid.name;
  const auto count = AttributeNumbers(ds, DcmTagKey(0x0065, 0x1050), 1, Raw::kText);
  const long slices = count.empty() ? 0 : std::lround(count[0]);
  if (slices < 1) throw Error(ErrorCode::kInvalidInput, name + ": UIH grid without its slice count (0065,1050)");
  const long across = static_cast<long>(std::ceil(std::sqrt(static_cast<double>(slices))));
  const long down = (slices + across - 1) / across;
  if (grid.rows % down != 0 || grid.columns % across != 0 || grid.frames != 1) {
    throw Error(ErrorCode::kInvalidInput, name + ": a " + std::to_string(grid.columns) + "x" + std::to_string(grid.rows) +
                                              " UIH grid cannot hold " + std::to_string(slices) + " equal tiles");
  }
  if (!grid.orientation) throw Error(ErrorCode::kInvalidInput, name + ": ImageOrientationPatient missing");
  const long tile_rows = grid.rows / down, tile_columns = grid.columns / across;
  std::vector<Vec3> positions;
  std::vector<std::optional<float>> times;
  for (long k = 0; k < slices; ++k) {
    DcmItem* item = nullptr;
    if (ds.findAndGetSequenceItem(DcmTagKey(0x0065, 0x1051), item, static_cast<int>(k)).bad() || item == nullptr) {
      throw Error(ErrorCode::kInvalidInput, name + ": UIH grid slice " + std::to_string(k + 1) + " of " +
                                                std::to_string(slices) + " has no item in (0065,1051)");
    }
    DicomImage probe;
    ReadPlaneGeometry(item, nullptr, nullptr, probe);
    if (!probe.position) {
      throw Error(ErrorCode::kInvalidInput, name + ": UIH grid slice " + std::to_string(k + 1) + " has no ImagePositionPatient");
    }
    positions.push_back(*probe.position);
    times.push_back(TimeOfDaySingle(DicomString(*item, DCM_AcquisitionTime)));
  }
  std::optional<float> earliest;
  for (const auto& t : times) {
    if (t && (!earliest || *t < *earliest)) earliest = t;
  }
  std::vector<Slice> out;
  for (long k = 0; k < slices; ++k) {
    Slice slice = CutTile(grid, k, across, tile_rows, tile_columns, "grid slice");
    slice.image.position = positions[k];
    if (times[k] && earliest) slice.timing_ms = static_cast<double>(*times[k] - *earliest) * 1000.0;
    out.push_back(std::move(slice));
  }
  SampleBuffer().swap(grid.samples);
  return out;
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
    if (info.vendor == Vendor::kPhilips) ApplyPhilipsScaling(GroupItem(ds, frame, DcmTagKey(0x2005, 0x140F)), tile);
    long temporal = 0;
    if (DcmItem* item = GroupItem(ds, frame, DcmTagKey(0x0020, 0x9111))) {  // Frame Content
      temporal = std::lround(ItemNumber(item, DcmTagKey(0x0020, 0x9128)).value_or(0));
    }
    slice.order = {image.instance_number, temporal, f};
    if (DcmItem* item = GroupItem(ds, frame, DcmTagKey(0x0018, 0x9114))) {  // MR Echo
      slice.echo = slice.echo_time_ms = ItemNumber(item, DcmTagKey(0x0018, 0x9082));
    }
    slice.diffusion = ReadDiffusion(ds, GroupItem(ds, frame, DcmTagKey(0x0018, 0x9117)), info.vendor, info.csa);
    if (info.vendor == Vendor::kSiemens && frame != nullptr) {  // XA: the frame's time after the volume's start (s)
      if (auto t = AttributeNumbers(*frame, DcmTagKey(0x0021, 0x1104), 1, Raw::kText, true); !t.empty()) {
        slice.timing_ms = t[0] * 1000.0;
      }
    }
    DcmItem* type_item = GroupItem(ds, frame, DcmTagKey(0x0018, 0x9226));  // MR Image Frame Type
    if (type_item == nullptr) type_item = GroupItem(ds, frame, DcmTagKey(0x0018, 0x9329));  // CT Image Frame Type
    slice.component = ComponentOf(ItemString(type_item, DcmTagKey(0x0008, 0x9007)),
                                  ItemString(type_item, DcmTagKey(0x0008, 0x9208)));
    out.push_back(std::move(slice));
  }
  // Slice times relative to the volume's first slice.
  std::optional<double> earliest;
  for (const auto& slice : out) {
    if (slice.timing_ms && (!earliest || *slice.timing_ms < *earliest)) earliest = slice.timing_ms;
  }
  for (auto& slice : out) {
    if (slice.timing_ms) *slice.timing_ms -= *earliest;
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

}  // namespace

Vendor VendorOf(const std::string& manufacturer) {
  const std::string upper = UpperCase(manufacturer);
  if (upper.find("SIEMENS") != std::string::npos) return Vendor::kSiemens;
  if (upper.find("PHILIPS") != std::string::npos) return Vendor::kPhilips;
  if (upper.rfind("GE", 0) == 0) return Vendor::kGE;
  if (upper.find("UIH") != std::string::npos || upper.find("UNITED IMAGING") != std::string::npos) return Vendor::kUIH;
  if (upper.find("CANON") != std::string::npos || upper.find("TOSHIBA") != std::string::npos) return Vendor::kCanon;
  return Vendor::kOther;
}

void LoadDeferred(std::vector<Slice>& slices, const SeriesInfo& info) {
  std::vector<Slice*> pending;
  for (auto& s : slices) {
    if (s.deferred) pending.push_back(&s);
  }
  ParallelFor(pending.size(), [&](std::size_t i) { info.load_pixels(*pending[i]); });
}

void ToModalityFloat(DicomImage& image) {
  SampleBuffer floats(image.SampleCount() * sizeof(float));
  auto* values = reinterpret_cast<float*>(floats.data());
  for (std::size_t i = 0; i < image.SampleCount(); ++i) {
    values[i] = static_cast<float>(static_cast<double>(image.Sample(i)) * image.slope + image.intercept);
  }
  image.samples.swap(floats);
}

SeriesSlices ReadSeriesSlices(StudySource& source, const SeriesRef& series, const LoadCallbacks& callbacks,
                              const std::function<void(DcmDataset& first, const SeriesInfo& info)>& first_instance) {
  if (series.instance_ids.empty()) throw Error(ErrorCode::kInvalidInput, "series " + series.id + ": no instances");
  SeriesSlices out;
  SeriesInfo& info = out.info;
  info.name = "series " + series.id;
  const std::size_t total = series.instance_ids.size();
  // Instance 0 first (it describes the series), then the others in parallel, each instance's
  // slices kept in its own place so the order does not depend on the threads.
  std::vector<std::vector<Slice>> per_instance(total);
  std::vector<SourceInstance>& sources = out.sources;
  sources.resize(total);
  // Shared with load_pixels, which runs after this function returned.
  struct Progress {
    std::mutex mutex;
    std::size_t done = 0, steps = 0;  // two steps per instance when its pixels are read in a second pass
  };
  auto progress = std::make_shared<Progress>();
  progress->steps = total;
  const auto* report = &callbacks;
  auto step_done = [progress, report] {
    if (!report->progress) return;
    std::lock_guard lock(progress->mutex);
    report->progress(++progress->done, progress->steps);
  };
  auto* folder = dynamic_cast<FolderStudySource*>(&source);
  auto read_instance = [&](std::size_t i) {
    if (callbacks.cancelled && callbacks.cancelled()) {
      throw Error(ErrorCode::kCancelled, info.name + ": conversion cancelled");
    }
    const std::string name = "instance " + series.instance_ids[i];
    // After the first instance, a series read in two passes takes the headers the folder scan
    // kept (parsed without reading the file again); the pixels come later (load_pixels).
    std::unique_ptr<DcmFileFormat> file;
    if (i > 0 && info.defer_pixels && folder != nullptr) file = folder->TakeHead(series.instance_ids[i]);
    const bool head_only = file != nullptr;
    if (!file) file = ReadInstance(source, series.instance_ids[i], name);
    DcmDataset* dataset = file->getDataset();
    // About fifty attributes are read from each file below: by binary search (nothing here adds
    // or removes a top-level element).
    std::optional<ScopedElementIndex> index(std::in_place, *dataset);
    if (i == 0) {
      DcmDataset& ds = *dataset;
      out.series_number = static_cast<int>(DicomNumber(ds, 0x0020, 0x0011).value_or(0));
      out.description = DicomString(ds, 0x0008, 0x103E);
      info.mr_3d = DicomString(ds, 0x0018, 0x0023) == "3D";
      info.tilt = DicomNumber(ds, 0x0018, 0x1120);
      info.mosaic = DicomString(ds, 0x0008, 0x0008).find("MOSAIC") != std::string::npos;
      // A 3D acquisition is rotated on output. Its single-frame images are read twice where that
      // is cheap: headers now (to sort and check the series), pixels later, straight into their
      // place in the rotated output, so the series is held once, not three times (before, beside
      // and after the rotation). Files of large images are read so too: the second read takes
      // the pixels alone, into buffers reused slice after slice (fresh pages cost more than the
      // copy under some hypervisors). Other series (from Orthanc, whose instances come whole, or
      // small images, whose files the folder scan keeps) are assembled as their images are
      // decoded, freeing each once copied.
      const double plane_bytes = DicomNumber(ds, 0x0028, 0x0010).value_or(0) * DicomNumber(ds, 0x0028, 0x0011).value_or(0) *
                                 DicomNumber(ds, 0x0028, 0x0100).value_or(0) / 8;
      info.vendor = VendorOf(DicomString(ds, 0x0008, 0x0070));
      info.uih_grid = info.vendor == Vendor::kUIH && ds.tagExists(DcmTagKey(0x0065, 0x1051)) &&
                      AttributeNumbers(ds, DcmTagKey(0x0065, 0x1050), 1, Raw::kText).size() == 1;
      const bool files = !source.InstancePath(series.instance_ids[i]).empty();
      info.defer_pixels = !info.mosaic && !info.uih_grid && source.RereadIsCheap() && (info.mr_3d || (files && plane_bytes >= kDeferredPlaneBytes));
      if (info.defer_pixels) progress->steps = 2 * total;
      info.csa = CsaImageHeader(ds, name);
      info.csa_diffusion = info.csa && CsaNumbers(*info.csa, "B_value").has_value();
      if (info.mosaic && info.csa) {
        const auto v = CsaNumbers(*info.csa, "SliceNormalVector");
        const auto iop = AttributeNumbers(ds, DCM_ImageOrientationPatient, 6, Raw::kText);
        if (v && v->size() == 3 && iop.size() == 6) {
          const Vec3 normal = Cross({iop[0], iop[1], iop[2]}, {iop[3], iop[4], iop[5]});
          info.mosaic_normal_sign = Dot({(*v)[0], (*v)[1], (*v)[2]}, normal) < 0 ? -1 : 1;
        }
      }
      if (auto z = AttributeNumbers(ds, DcmTagKey(0x0018, 0x0088), 1, Raw::kText, true); !z.empty() && z[0] > 0) {
        info.spacing_between_slices = z[0];
      }
      if (info.vendor == Vendor::kGE) {
        if (auto n = AttributeNumbers(ds, DcmTagKey(0x0019, 0x10E0), 1, Raw::kText); !n.empty()) info.ge_diffusion_directions = n[0];
        info.ge_slice_order = GeSliceOrderOf(ds);
      }
      // Enhanced objects keep these in the shared functional groups.
      info.phase_direction = DicomString(ds, 0x0018, 0x1312);
      if (info.phase_direction.empty()) {
        info.phase_direction = ItemString(GroupItem(ds, nullptr, DcmTagKey(0x0018, 0x9125)), DcmTagKey(0x0018, 0x1312));
      }
      if (info.phase_direction == "COLUMN") info.phase_direction = "COL";  // enhanced objects spell it out
      info.repetition_time = DicomNumber(ds, 0x0018, 0x0080);
      if (!info.repetition_time) {
        info.repetition_time = ItemNumber(GroupItem(ds, nullptr, DcmTagKey(0x0018, 0x9112)), DcmTagKey(0x0018, 0x0080));
      }
      if (first_instance) first_instance(ds, info);
    }
    DicomImage decoded = DecodeDicomImageHeader(*dataset, name);
    const bool multi_frame = decoded.frames > 1 || dataset->tagExists(DcmTagKey(0x5200, 0x9230));
    const bool deferred = info.defer_pixels && !info.mosaic && !multi_frame;
    if (!deferred && head_only) {  // an image read at once after all: the whole file
      index.reset();
      file = ReadInstance(source, series.instance_ids[i], name);
      dataset = file->getDataset();
      index.emplace(*dataset);
      decoded = DecodeDicomImageHeader(*dataset, name);
    }
    DcmDataset& ds = *dataset;
    if (!deferred) {
      DecodeDicomPixels(ds, decoded);
      // A DCMTK decoder may replace attributes it changed (PhotometricInterpretation): index again.
      index.reset();
      index.emplace(ds);
    }
    sources[i] = {.sop_class_uid = decoded.sop_class_uid, .sop_instance_uid = decoded.sop_instance_uid,
                  .series_instance_uid = decoded.series_uid,
                  .frame_of_reference_uid = DicomString(ds, 0x0020, 0x0052), .rows = decoded.rows,
                  .columns = decoded.columns, .frames = decoded.frames, .position = decoded.position,
                  .orientation = decoded.orientation, .pixel_spacing = decoded.pixel_spacing,
                  .slice_thickness = decoded.slice_thickness};
    std::vector<Slice>& found = per_instance[i];
    // This instance's CSA header where it says more than the first one's: a mosaic's geometry and
    // times, a diffusion series' b-value and gradient.
    std::optional<SiemensCsa> csa;
    if (info.mosaic || info.csa_diffusion) csa = i == 0 ? info.csa : CsaImageHeader(ds, name);
    if (info.mosaic) {
      found = UnpackMosaic(ds, decoded, csa);
    } else if (info.uih_grid) {
      found = UnpackUihGrid(ds, decoded);
    } else if (multi_frame) {
      found = ExpandEnhanced(ds, decoded, info);
    } else {
      if (info.vendor == Vendor::kPhilips) ApplyPhilipsScaling(&ds, decoded);
      Slice slice{std::move(decoded)};
      slice.order = {slice.image.instance_number, 0, 0};
      slice.echo = DicomNumber(ds, 0x0018, 0x0086);
      slice.component = ComponentOf(DicomString(ds, 0x0008, 0x0008), "");
      slice.instance = i;
      slice.deferred = deferred;
      found.push_back(std::move(slice));
    }
    if (!multi_frame || info.mosaic || info.uih_grid) {  // enhanced frames read their own, per frame
      const auto diffusion = ReadDiffusion(ds, nullptr, info.vendor, csa);
      for (auto& slice : found) slice.diffusion = diffusion;
    }
    step_done();
  };
  info.load_pixels = [&source, &series, folder, report, step_done, name = info.name](Slice& slice) {
    if (report->cancelled && report->cancelled()) {
      throw Error(ErrorCode::kCancelled, name + ": conversion cancelled");
    }
    DicomImage& image = slice.image;
    const std::string& id = series.instance_ids[slice.instance];
    if (folder != nullptr) {
      if (const auto at = folder->PixelLocationOf(id)) {  // native pixels whose place the scan found
        ReadNativePixels(image, at->length,
                         [&](char* out, std::size_t bytes) { FolderStudySource::ReadPixels(id, *at, out, bytes); });
        slice.deferred = false;
        step_done();
        return;
      }
    }
    auto file = ReadInstance(source, id, image.name);
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
  std::vector<Slice>& slices = out.slices;
  for (auto& found : per_instance) {
    for (auto& slice : found) {
      if (!slices.empty()) CheckConsistent(slice.image, slices.front().image);
      slices.push_back(std::move(slice));
    }
    std::vector<Slice>().swap(found);
  }
  return out;
}

std::vector<SlicePart> SplitParts(std::vector<Slice> slices) {
  std::vector<std::pair<std::optional<double>, std::string>> part_keys;
  std::vector<std::optional<double>> echoes;
  for (const auto& s : slices) {
    const auto key = std::make_pair(s.echo, s.component);
    if (std::find(part_keys.begin(), part_keys.end(), key) == part_keys.end()) part_keys.push_back(key);
    if (std::find(echoes.begin(), echoes.end(), s.echo) == echoes.end()) echoes.push_back(s.echo);
  }
  std::vector<SlicePart> parts;
  for (const auto& key : part_keys) {
    SlicePart part;
    for (auto& s : slices) {
      if (s.echo == key.first && s.component == key.second) part.slices.push_back(std::move(s));
    }
    if (part_keys.size() > 1) {
      if (echoes.size() > 1) {
        const auto rank = std::find(echoes.begin(), echoes.end(), key.first) - echoes.begin() + 1;
        part.suffix = "_e" + std::to_string(rank);
      }
      if (!key.second.empty()) part.suffix += "_" + key.second;
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

std::vector<ArrangedPart> ArrangePart(std::vector<Slice> slices, const SeriesInfo& info) {
  ArrangedPart result;
  const std::string& series_name = info.name;
  const auto& tilt = info.tilt;
  // Geometry missing from every image (non-spatial exports, some anonymizers): as dcm2niix, an
  // axial orientation is assumed and the slices are stacked in acquisition order, the volume
  // centred on the origin; said in the warnings. Missing from only some images is an error below.
  if (std::none_of(slices.begin(), slices.end(), [](const Slice& s) { return s.image.orientation.has_value(); })) {
    for (auto& s : slices) s.image.orientation = std::array<double, 6>{1, 0, 0, 0, 1, 0};
    result.warnings.push_back("ImageOrientationPatient missing: an axial orientation is assumed");
    result.geometry_assumed = true;
  }
  if (std::none_of(slices.begin(), slices.end(), [](const Slice& s) { return s.image.position.has_value(); })) {
    std::stable_sort(slices.begin(), slices.end(), [](const Slice& a, const Slice& b) { return a.order < b.order; });
    const DicomImage& first = slices.front().image;
    const auto& o = *first.orientation;
    const Vec3 row{o[0], o[1], o[2]}, col{o[3], o[4], o[5]}, normal = Cross(row, col);
    const double dx = first.pixel_spacing[1], dy = first.pixel_spacing[0];
    const double dz = info.spacing_between_slices ? *info.spacing_between_slices
                      : first.slice_thickness > 0 ? first.slice_thickness : 1.0;
    const double n = static_cast<double>(slices.size());
    for (std::size_t k = 0; k < slices.size(); ++k) {
      const double along = (static_cast<double>(k) - (n - 1) / 2) * dz;
      Vec3 p{};
      for (int r = 0; r < 3; ++r) {
        p[r] = -(first.columns - 1) / 2.0 * dx * row[r] - (first.rows - 1) / 2.0 * dy * col[r] + along * normal[r];
      }
      slices[k].image.position = p;
    }
    result.warnings.push_back("ImagePositionPatient missing: slices stacked in instance order " + ShortNumber(dz) +
                              " mm apart, centred on the origin");
    result.geometry_assumed = true;
  }
  for (const auto& s : slices) {
    if (!s.image.position || !s.image.orientation) {
      throw Error(ErrorCode::kInvalidInput, s.image.name + ": ImagePositionPatient or ImageOrientationPatient missing");
    }
    CheckConsistent(s.image, slices.front().image);
  }
  const DicomImage& first = slices.front().image;
  const auto& iop = *first.orientation;
  const Vec3 row_dir{iop[0], iop[1], iop[2]}, col_dir{iop[3], iop[4], iop[5]};
  // Sorted along row x column, as dcm2niix orders single images (it flips any other order), or
  // for a mosaic along its CSA normal (dcm2niix keeps the mosaic's own order).
  Vec3 normal = Cross(row_dir, col_dir);
  if (info.mosaic && info.mosaic_normal_sign < 0) normal = {-normal[0], -normal[1], -normal[2]};
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

  // One position: SpacingBetweenSlices, else SliceThickness (dcm2niix's order).
  double slice_spacing = info.spacing_between_slices ? *info.spacing_between_slices
                         : first.slice_thickness > 0 ? first.slice_thickness : 1.0;
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
        throw Error(ErrorCode::kUnsupported, series_name + ": slice spacing varies " + ShortNumber(lo) + "-" + ShortNumber(hi) +
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
      std::vector<ArrangedPart> parts;
      for (std::size_t r = 0; r < runs.size(); ++r) {
        for (auto& part : ArrangePart(std::move(runs[r]), info)) {
          part.suffix = "_part" + std::to_string(r + 1) + part.suffix;
          part.warnings.insert(part.warnings.begin(), "slice spacing varies " + ShortNumber(lo) + "-" + ShortNumber(hi) +
                                                          " mm: split into " + std::to_string(runs.size()) +
                                                          " evenly spaced parts; this is part " + std::to_string(r + 1));
          part.spacing_split = true;
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
        throw Error(ErrorCode::kUnsupported, series_name + ": gantry tilt of " + ShortNumber(tilt ? *tilt : tilt_degrees) +
                                                 " degrees in a 4D series is not corrected");
      }
      std::string note;
      const double row_spacing = first.pixel_spacing[0];
      LoadDeferred(slices, info);
      corrected = TiltCorrect(std::move(slices), col_dir, normal, row_spacing, note);
      result.warnings.push_back("gantry tilt of " + ShortNumber(tilt ? *tilt : tilt_degrees) + " degrees: " + note);
      for (auto& s : corrected) s.key = Dot(*s.image.position, normal);
      slices = std::move(corrected);
      slice_spacing = (slices.back().key - slices.front().key) / static_cast<double>(positions - 1);
    }
  }
  result.slices = std::move(slices);
  result.position_starts = std::move(position_starts);
  result.positions = positions;
  result.volumes = volumes;
  result.slice_spacing = slice_spacing;
  result.row_dir = row_dir;
  result.col_dir = col_dir;
  result.normal = normal;
  std::vector<ArrangedPart> single;  // not {std::move(result)}: an initializer list would copy the slices
  single.push_back(std::move(result));
  return single;
}

}  // namespace procnode
