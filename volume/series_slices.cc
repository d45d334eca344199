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
#include "dicom/io.h"

namespace procnode {
namespace {

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

}  // namespace

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
  auto read_instance = [&](std::size_t i) {
    if (callbacks.cancelled && callbacks.cancelled()) {
      throw Error(ErrorCode::kCancelled, info.name + ": conversion cancelled");
    }
    const std::string name = "instance " + series.instance_ids[i];
    auto file = ReadInstance(source, series.instance_ids[i], name);
    DcmDataset& ds = *file->getDataset();
    if (i == 0) {
      out.series_number = static_cast<int>(DicomNumber(ds, 0x0020, 0x0011).value_or(0));
      out.description = DicomString(ds, 0x0008, 0x103E);
      info.mr_3d = DicomString(ds, 0x0018, 0x0023) == "3D";
      info.tilt = DicomNumber(ds, 0x0018, 0x1120);
      info.mosaic = DicomString(ds, 0x0008, 0x0008).find("MOSAIC") != std::string::npos;
      // A 3D acquisition is rotated on output. Its single-frame images are read twice where that
      // is cheap: headers now (to sort and check the series), pixels later, straight into their
      // place in the rotated output, so the series is held once, not three times (before, beside
      // and after the rotation). Other series are assembled as their images are decoded, freeing
      // each once copied: they peak near one volume anyway, and a second read would only cost time.
      info.defer_pixels = info.mr_3d && !info.mosaic && source.RereadIsCheap();
      if (info.defer_pixels) progress->steps = 2 * total;
      info.philips = UpperCase(DicomString(ds, 0x0008, 0x0070)).find("PHILIPS") != std::string::npos;
      info.csa = CsaImageHeader(ds, name);
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
  info.load_pixels = [&source, &series, report, step_done, name = info.name](Slice& slice) {
    if (report->cancelled && report->cancelled()) {
      throw Error(ErrorCode::kCancelled, name + ": conversion cancelled");
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
