#include "nifti/nifti1.h"

#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/parallel.h"

namespace procnode {
namespace {

template <typename T>
void Put(std::string& buffer, std::size_t offset, T value) {
  std::memcpy(buffer.data() + offset, &value, sizeof value);
}

void PutText(std::string& buffer, std::size_t offset, std::size_t size, const std::string& text) {
  std::memcpy(buffer.data() + offset, text.data(), std::min(size - 1, text.size()));
}

}  // namespace

int NiftiBitsPerVoxel(int16_t datatype) {
  switch (datatype) {
    case kDtUint8: case kDtInt8: return 8;
    case kDtInt16: case kDtUint16: return 16;
    case kDtInt32: case kDtUint32: case kDtFloat32: return 32;
    case kDtFloat64: return 64;
  }
  throw Error(ErrorCode::kInternal, "NIfTI datatype " + std::to_string(datatype) + " not supported");
}

Quatern AffineToQuatern(const std::array<std::array<double, 4>, 3>& srow) {
  Quatern q;
  q.offset = {srow[0][3], srow[1][3], srow[2][3]};
  double r[3][3];
  for (int col = 0; col < 3; ++col) {
    const double norm = std::sqrt(srow[0][col] * srow[0][col] + srow[1][col] * srow[1][col] + srow[2][col] * srow[2][col]);
    q.spacing[col] = norm == 0 ? 1 : norm;
    for (int row = 0; row < 3; ++row) r[row][col] = norm == 0 ? (row == col ? 1 : 0) : srow[row][col] / norm;
  }
  const double det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) -
                     r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
                     r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  if (det < 0) {
    q.qfac = -1;
    for (auto& row : r) row[2] = -row[2];
  }
  // Rotation matrix to quaternion (a >= 0), as in the NIfTI-1 reference library.
  double a = r[0][0] + r[1][1] + r[2][2] + 1;
  double b, c, d;
  if (a > 0.5) {
    a = 0.5 * std::sqrt(a);
    b = 0.25 * (r[2][1] - r[1][2]) / a;
    c = 0.25 * (r[0][2] - r[2][0]) / a;
    d = 0.25 * (r[1][0] - r[0][1]) / a;
  } else {
    const double xd = 1 + r[0][0] - (r[1][1] + r[2][2]);
    const double yd = 1 + r[1][1] - (r[0][0] + r[2][2]);
    const double zd = 1 + r[2][2] - (r[0][0] + r[1][1]);
    if (xd > 1) {
      b = 0.5 * std::sqrt(xd);
      c = 0.25 * (r[0][1] + r[1][0]) / b;
      d = 0.25 * (r[0][2] + r[2][0]) / b;
      a = 0.25 * (r[2][1] - r[1][2]) / b;
    } else if (yd > 1) {
      c = 0.5 * std::sqrt(yd);
      b = 0.25 * (r[0][1] + r[1][0]) / c;
      d = 0.25 * (r[1][2] + r[2][1]) / c;
      a = 0.25 * (r[0][2] - r[2][0]) / c;
    } else {
      d = 0.5 * std::sqrt(zd);
      b = 0.25 * (r[0][2] + r[2][0]) / d;
      c = 0.25 * (r[1][2] + r[2][1]) / d;
      a = 0.25 * (r[1][0] - r[0][1]) / d;
    }
    if (a < 0) b = -b, c = -c, d = -d;
  }
  q.b = b, q.c = c, q.d = d;
  return q;
}

// The quaternion as stored (float32). Readers rebuild a = sqrt(1 - b^2 - c^2 - d^2); near a
// half-turn (a ~ 0) float rounding of b, c, d would make that a ~ 1e-4 and tilt the qform by
// ~1e-3, so there (b, c, d) is made a unit vector whose float squares sum to at least 1.
std::array<float, 3> StoredQuaternion(const Quatern& q) {
  const double a2 = 1.0 - (q.b * q.b + q.c * q.c + q.d * q.d);
  if (a2 > 1e-6) return {static_cast<float>(q.b), static_cast<float>(q.c), static_cast<float>(q.d)};
  const double norm = std::sqrt(q.b * q.b + q.c * q.c + q.d * q.d);
  double scale = norm > 0 ? 1.0 / norm : 1.0;
  std::array<float, 3> stored{};
  for (int attempt = 0; attempt < 16; ++attempt, scale *= 1.0 + 1e-7) {
    stored = {static_cast<float>(q.b * scale), static_cast<float>(q.c * scale), static_cast<float>(q.d * scale)};
    const double sum = double(stored[0]) * stored[0] + double(stored[1]) * stored[1] + double(stored[2]) * stored[2];
    if (sum >= 1.0) break;
  }
  return stored;
}

std::string NiftiHeaderBytes(const NiftiImage& image) {
  std::string h(352, '\0');
  Put<int32_t>(h, 0, 348);
  h[38] = 'r';
  h[39] = static_cast<char>(image.dim_info);
  Put<int16_t>(h, 40, static_cast<int16_t>(image.dimensions));
  for (int i = 0; i < 5; ++i) Put<int16_t>(h, 42 + 2 * i, static_cast<int16_t>(image.dims[i]));
  for (int i = 5; i < 7; ++i) Put<int16_t>(h, 42 + 2 * i, 1);
  Put<int16_t>(h, 70, image.datatype);
  Put<int16_t>(h, 72, static_cast<int16_t>(NiftiBitsPerVoxel(image.datatype)));
  Put<int16_t>(h, 74, image.slice_start);
  const Quatern q = AffineToQuatern(image.srow);
  Put<float>(h, 76, static_cast<float>(q.qfac));
  for (int i = 0; i < 4; ++i) Put<float>(h, 80 + 4 * i, static_cast<float>(image.pixdim[i]));
  Put<float>(h, 108, 352.0f);
  Put<float>(h, 112, static_cast<float>(image.scl_slope));
  Put<float>(h, 116, static_cast<float>(image.scl_inter));
  Put<int16_t>(h, 120, image.slice_end);
  h[122] = static_cast<char>(image.slice_code);
  h[123] = 10;  // NIFTI_UNITS_MM | NIFTI_UNITS_SEC
  Put<float>(h, 132, static_cast<float>(image.slice_duration));
  PutText(h, 148, 80, image.descrip);
  Put<int16_t>(h, 252, image.spatial ? 1 : 0);  // qform_code: scanner (0: unknown, the geometry was guessed)
  Put<int16_t>(h, 254, image.spatial ? 1 : 0);  // sform_code
  const auto stored = StoredQuaternion(q);
  Put<float>(h, 256, stored[0]);
  Put<float>(h, 260, stored[1]);
  Put<float>(h, 264, stored[2]);
  for (int i = 0; i < 3; ++i) Put<float>(h, 268 + 4 * i, static_cast<float>(q.offset[i]));
  for (int row = 0; row < 3; ++row)
    for (int col = 0; col < 4; ++col) Put<float>(h, 280 + 16 * row + 4 * col, static_cast<float>(image.srow[row][col]));
  std::memcpy(h.data() + 344, "n+1", 4);
  return h;
}

namespace {

// A libdeflate compressor (Debian's libdeflate: whole-buffer DEFLATE, 3-4x zlib's speed at level
// 6 with slightly smaller output, bench/README) with the buffer its gzip members are written to.
// Allocating a compressor costs more than compressing a small chunk, and the threads of each
// parallel batch are new: compressors are kept in a pool for the process's life, not per thread.
struct Deflater {
  explicit Deflater(int level) : compressor(libdeflate_alloc_compressor(level)) {
    if (compressor == nullptr) throw Error(ErrorCode::kInternal, "libdeflate: cannot allocate a compressor");
  }
  ~Deflater() { libdeflate_free_compressor(compressor); }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  libdeflate_compressor* compressor;
  std::vector<char> out;
  std::size_t written = 0;
};

class DeflaterPool {
 public:
  static DeflaterPool& Instance() {
    static DeflaterPool pool;
    return pool;
  }
  std::unique_ptr<Deflater> Acquire(int level) {
    {
      std::lock_guard lock(mutex_);
      auto& free = free_[static_cast<std::size_t>(level)];
      if (!free.empty()) {
        auto deflater = std::move(free.back());
        free.pop_back();
        return deflater;
      }
    }
    return std::make_unique<Deflater>(level);
  }
  void Release(int level, std::unique_ptr<Deflater> deflater) {
    std::lock_guard lock(mutex_);
    free_[static_cast<std::size_t>(level)].push_back(std::move(deflater));
  }

 private:
  std::mutex mutex_;
  std::array<std::vector<std::unique_ptr<Deflater>>, 13> free_;
};

// One gzip member (RFC 1952) of `size` bytes at `data`, into `d.out` (`d.written` bytes).
void GzipMember(Deflater& d, const char* data, std::size_t size) {
  const std::size_t bound = libdeflate_gzip_compress_bound(d.compressor, size);
  if (d.out.size() < bound) d.out.resize(bound);  // grows once per pooled buffer, not per chunk
  d.written = libdeflate_gzip_compress(d.compressor, data, size, d.out.data(), d.out.size());
  if (d.written == 0) throw Error(ErrorCode::kInternal, "libdeflate: gzip compression failed");
}

// Gzip of `parts` (concatenated) as independent members, compressed in parallel a batch at a
// time and handed to `sink` in order, so that only one batch of compressed chunks is held at
// once. Any gzip reader reads the members back as one stream (RFC 1952 2.2).
void GzipParallel(const std::vector<std::string_view>& parts, int level, const std::function<void(std::string_view)>& sink) {
  level = std::clamp(level, 0, 12);
  // Chunks of at most 1 MiB, and no larger than an even share per thread, so that a small volume
  // keeps every core busy too (under 64 KiB the members' fresh windows would cost ratio).
  const std::size_t threads = DefaultParallelism();
  std::size_t total = 0;
  for (const auto& part : parts) total += part.size();
  const std::size_t chunk = std::clamp<std::size_t>((total + threads - 1) / threads, 64 << 10, 1 << 20);
  std::vector<std::string_view> chunks;
  for (const auto& part : parts) {
    for (std::size_t at = 0; at < part.size(); at += chunk) chunks.push_back(part.substr(at, chunk));
  }
  // A batch is as many chunks as add up to one chunk per thread; a small part (the NIfTI header)
  // rides along with them instead of taking a batch's place.
  constexpr std::size_t kSmall = 64 << 10;
  // A batch's deflaters, back to the pool however the batch ends.
  struct Lease {
    int level;
    std::vector<std::unique_ptr<Deflater>> members;
    ~Lease() {
      for (auto& member : members) DeflaterPool::Instance().Release(level, std::move(member));
    }
  };
  for (std::size_t first = 0; first < chunks.size();) {
    std::size_t last = first, bytes = 0;
    while (last < chunks.size() && (last == first || bytes + chunks[last].size() <= threads * chunk + kSmall)) {
      bytes += chunks[last++].size();
    }
    Lease lease{level, {}};
    for (std::size_t i = first; i < last; ++i) lease.members.push_back(DeflaterPool::Instance().Acquire(level));
    const auto& members = lease.members;
    ParallelFor(last - first, [&](std::size_t i) { GzipMember(*members[i], chunks[first + i].data(), chunks[first + i].size()); });
    for (const auto& member : members) sink(std::string_view(member->out.data(), member->written));
    first = last;
  }
}

}  // namespace

std::string Gzip(const std::string& bytes, int level) {
  std::string out;
  GzipParallel({bytes}, level, [&](std::string_view member) { out += member; });
  return out;
}

std::string NiftiFileBytes(const NiftiImage& image, bool gzip) {
  const std::string header = NiftiHeaderBytes(image);
  if (!gzip) return header + image.voxels;
  std::string out;
  // Room for the worst case (deflate's bound), so appending never copies; pages never written are
  // never resident.
  out.reserve(header.size() + image.voxels.size() + image.voxels.size() / 100 + (64 << 10));
  GzipParallel({header, image.voxels}, 6, [&](std::string_view member) { out += member; });
  return out;
}

void WriteNiftiFile(const std::string& path, const NiftiImage& image, bool gzip) {
  const std::string header = NiftiHeaderBytes(image);
  const auto fail = [&](const char* what) {
    const int error = errno;
    RemovePartialFile(path);
    throw Error(ErrorCode::kUnavailable, path + ": " + what + " (" + ErrnoReason(error) + ")");
  };
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) fail("cannot be created");
  bool ok = true;
  if (gzip) {
    GzipParallel({header, image.voxels}, 6, [&](std::string_view member) {
      ok = ok && std::fwrite(member.data(), 1, member.size(), file) == member.size();
    });
  } else {
    ok = std::fwrite(header.data(), 1, header.size(), file) == header.size() &&
         std::fwrite(image.voxels.data(), 1, image.voxels.size(), file) == image.voxels.size();
  }
  if (std::fclose(file) != 0 || !ok) fail("write failed");
}

namespace {

template <typename T>
T Get(const std::string& buffer, std::size_t offset) {
  T value;
  std::memcpy(&value, buffer.data() + offset, sizeof value);
  return value;
}

// Every gzip member of `bytes` inflated, one after the other (RFC 1952 2.2).
std::string Gunzip(const std::string& bytes, const std::string& name, std::size_t max_bytes) {
  std::string out;
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw Error(ErrorCode::kInternal, name + ": zlib cannot start");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  std::vector<char> chunk(1 << 20);
  while (true) {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    const int status = inflate(&z, Z_NO_FLUSH);
    out.append(chunk.data(), chunk.size() - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      throw Error(ErrorCode::kTooLarge, name + ": inflates to more than " + std::to_string(max_bytes >> 20) + " MiB");
    }
    if (status == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);  // the next member
      continue;
    }
    if (status != Z_OK && !(status == Z_BUF_ERROR && z.avail_out == 0)) {
      inflateEnd(&z);
      throw Error(ErrorCode::kInvalidInput, name + ": damaged or truncated gzip data");
    }
  }
  inflateEnd(&z);
  return out;
}

}  // namespace

NiftiImage ParseNiftiBytes(const std::string& given, const std::string& name, std::size_t max_bytes) {
  const bool gzipped = given.size() >= 2 && static_cast<unsigned char>(given[0]) == 0x1f && static_cast<unsigned char>(given[1]) == 0x8b;
  const std::string bytes = gzipped ? Gunzip(given, name, max_bytes) : std::string();
  const std::string& b = gzipped ? bytes : given;
  auto bad = [&](const std::string& why) { return Error(ErrorCode::kInvalidInput, name + ": " + why); };
  if (b.size() < 348) throw bad("too short for a NIfTI-1 header (" + std::to_string(b.size()) + " bytes)");
  const int32_t header_size = Get<int32_t>(b, 0);
  if (header_size == 0x5c010000) throw bad("big-endian NIfTI is not supported");
  if (header_size != 348) throw bad("not NIfTI-1 (sizeof_hdr " + std::to_string(header_size) + ")");
  if (b.compare(344, 4, std::string("n+1\0", 4)) != 0) throw bad("not a single-file NIfTI-1 image (magic is not n+1)");
  NiftiImage image;
  image.dimensions = Get<int16_t>(b, 40);
  if (image.dimensions < 1 || image.dimensions > 5) throw bad("dim[0] " + std::to_string(image.dimensions) + " is not 1 to 5");
  uint64_t count = 1;
  for (int i = 0; i < 5; ++i) {
    image.dims[i] = i < image.dimensions ? Get<int16_t>(b, 42 + 2 * i) : 1;
    if (image.dims[i] < 1) throw bad("dim[" + std::to_string(i + 1) + "] is " + std::to_string(image.dims[i]));
    count *= static_cast<uint64_t>(image.dims[i]);
  }
  image.datatype = Get<int16_t>(b, 70);
  switch (image.datatype) {
    case kDtUint8: case kDtInt8: case kDtInt16: case kDtUint16: case kDtInt32: case kDtUint32: case kDtFloat32: case kDtFloat64: break;
    default: throw bad("datatype " + std::to_string(image.datatype) + " is not supported");
  }
  for (int i = 0; i < 4; ++i) image.pixdim[i] = Get<float>(b, 80 + 4 * i);
  const float offset = Get<float>(b, 108);
  if (!(offset >= 348) || offset > static_cast<float>(b.size())) throw bad("vox_offset " + std::to_string(offset) + " is outside the file");
  image.scl_slope = Get<float>(b, 112);
  image.scl_inter = Get<float>(b, 116);
  if (image.scl_slope == 0 || !std::isfinite(image.scl_slope)) image.scl_slope = 1, image.scl_inter = 0;  // NIfTI: 0 means unscaled
  image.slice_start = Get<int16_t>(b, 74);
  image.slice_end = Get<int16_t>(b, 120);
  image.slice_code = static_cast<uint8_t>(b[122]);
  image.dim_info = static_cast<uint8_t>(b[39]);
  image.slice_duration = Get<float>(b, 132);
  image.descrip = std::string(b.data() + 148, strnlen(b.data() + 148, 80));
  if (Get<int16_t>(b, 254) <= 0) throw bad("no sform (sform_code 0): its orientation is unknown");
  for (int row = 0; row < 3; ++row)
    for (int col = 0; col < 4; ++col) image.srow[row][col] = Get<float>(b, 280 + 16 * row + 4 * col);
  const uint64_t voxel_bytes = count * static_cast<uint64_t>(NiftiBitsPerVoxel(image.datatype) / 8);
  const auto start = static_cast<std::size_t>(offset);
  if (b.size() - start < voxel_bytes) {
    throw bad("truncated: " + std::to_string(b.size() - start) + " bytes of voxels, " + std::to_string(voxel_bytes) + " expected");
  }
  image.voxels.assign(b.data() + start, voxel_bytes);
  return image;
}

NiftiImage ReadNiftiFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kUnavailable, path + ": cannot be read");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseNiftiBytes(bytes, path);
}

std::array<std::array<double, 4>, 3> VolumeAffine(const Volume& v) {
  std::array<std::array<double, 4>, 3> srow{};
  const std::array<const std::array<double, 3>*, 3> axes{&v.row_direction, &v.column_direction, &v.slice_direction};
  for (int axis = 0; axis < 3; ++axis) {
    for (int r = 0; r < 3; ++r) srow[r][axis] = (r < 2 ? -1 : 1) * (*axes[axis])[r] * v.spacing[axis];
  }
  srow[0][3] = -v.origin[0];  // LPS -> RAS
  srow[1][3] = -v.origin[1];
  srow[2][3] = v.origin[2];
  return srow;
}

Volume VolumeFromNifti(const NiftiImage& image) {
  Volume v;
  v.dims = {static_cast<std::size_t>(image.dims[0]), static_cast<std::size_t>(image.dims[1]),
            static_cast<std::size_t>(image.dims[2] * image.dims[3])};
  std::array<std::array<double, 3>*, 3> axes{&v.row_direction, &v.column_direction, &v.slice_direction};
  for (int axis = 0; axis < 3; ++axis) {
    const double length = std::hypot(image.srow[0][axis], image.srow[1][axis], image.srow[2][axis]);
    v.spacing[axis] = length;
    for (int r = 0; r < 3; ++r) (*axes[axis])[r] = (r < 2 ? -1 : 1) * image.srow[r][axis] / (length > 0 ? length : 1);
  }
  v.origin = {-image.srow[0][3], -image.srow[1][3], image.srow[2][3]};  // RAS -> LPS
  const std::size_t count = v.VoxelCount();
  if (image.voxels.size() < count * static_cast<std::size_t>(NiftiBitsPerVoxel(image.datatype) / 8)) {
    throw Error(ErrorCode::kInvalidInput, "NIfTI image: fewer voxels than its dimensions say");
  }
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
    case kDtFloat64: scale(reinterpret_cast<const double*>(data)); break;
  }
  return v;
}

}  // namespace procnode
