#include "nifti/nifti1.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace procnode {
namespace {

template <typename T>
T At(const std::string& bytes, std::size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

NiftiImage Sample() {
  NiftiImage image;
  image.dims = {2, 3, 4, 1, 1};
  image.pixdim = {0.5, 0.75, 2.0, 0};
  image.datatype = kDtInt16;
  image.scl_slope = 1;
  image.scl_inter = -1024;
  image.srow = {{{-0.5, 0, 0, 10}, {0, 0.75, 0, -20}, {0, 0, 2, 30}}};
  image.voxels.assign(2 * 3 * 4 * 2, '\x01');
  return image;
}

TEST(Nifti1, HeaderHasTheNifti1LayoutAndDcm2niixConventions) {
  const std::string h = NiftiHeaderBytes(Sample());
  ASSERT_EQ(h.size(), 352u);
  EXPECT_EQ(At<int32_t>(h, 0), 348);
  EXPECT_EQ(std::string(h.data() + 344, 4), std::string("n+1\0", 4));
  EXPECT_EQ(At<int16_t>(h, 40), 3);
  EXPECT_EQ(At<int16_t>(h, 42), 2);
  EXPECT_EQ(At<int16_t>(h, 46), 4);
  EXPECT_EQ(At<int16_t>(h, 70), kDtInt16);
  EXPECT_EQ(At<int16_t>(h, 72), 16);
  EXPECT_EQ(At<float>(h, 76), -1.0f);  // qfac: the affine is left-handed
  EXPECT_EQ(At<float>(h, 108), 352.0f);
  EXPECT_EQ(At<float>(h, 116), -1024.0f);
  EXPECT_EQ(h[123], 10);
  EXPECT_EQ(At<int16_t>(h, 252), 1);
  EXPECT_EQ(At<int16_t>(h, 254), 1);
  EXPECT_EQ(At<float>(h, 280 + 12), 10.0f);
  EXPECT_EQ(At<int32_t>(h, 348), 0) << "no extension";
}

TEST(Nifti1, QuaternionOfAnObliqueAffineRebuildsIt) {
  // A rotation of 30 degrees about z, with spacing (0.9, 0.8, 1.5) and a left-handed z.
  const double c = std::cos(M_PI / 6), s = std::sin(M_PI / 6);
  const std::array<std::array<double, 4>, 3> srow{{{c * 0.9, -s * 0.8, 0, 1}, {s * 0.9, c * 0.8, 0, 2}, {0, 0, -1.5, 3}}};
  const Quatern q = AffineToQuatern(srow);
  EXPECT_EQ(q.qfac, -1);
  const double a = std::sqrt(std::max(0.0, 1 - q.b * q.b - q.c * q.c - q.d * q.d));
  const double r00 = a * a + q.b * q.b - q.c * q.c - q.d * q.d, r10 = 2 * (q.b * q.c + a * q.d);
  EXPECT_NEAR(r00 * q.spacing[0], srow[0][0], 1e-9);
  EXPECT_NEAR(r10 * q.spacing[0], srow[1][0], 1e-9);
  EXPECT_NEAR(q.spacing[2], 1.5, 1e-12);
  EXPECT_EQ(q.offset[2], 3);
}

TEST(Nifti1, GzipOutputInflatesBackToTheFile) {
  const NiftiImage image = Sample();
  const std::string plain = NiftiFileBytes(image, false);
  const std::string packed = NiftiFileBytes(image, true);
  ASSERT_EQ(static_cast<unsigned char>(packed[0]), 0x1f);
  // The file may hold several gzip members (parallel compression): inflate them all.
  std::string out;
  std::size_t at = 0;
  while (at < packed.size()) {
    z_stream stream{};
    ASSERT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
    std::string member(plain.size() + 16, '\0');
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data() + at));
    stream.avail_in = static_cast<uInt>(packed.size() - at);
    stream.next_out = reinterpret_cast<Bytef*>(member.data());
    stream.avail_out = static_cast<uInt>(member.size());
    ASSERT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
    member.resize(stream.total_out);
    at += stream.total_in;
    inflateEnd(&stream);
    out += member;
  }
  EXPECT_EQ(out, plain);
}

TEST(Nifti1Reader, ReadsBackWhatTheWriterWroteInBothForms) {
  NiftiImage image = Sample();
  image.descrip = "procnode test";
  for (const bool gzip : {false, true}) {
    const NiftiImage back = ParseNiftiBytes(NiftiFileBytes(image, gzip), "sample");
    EXPECT_EQ(back.dims, image.dims);
    EXPECT_EQ(back.dimensions, 3);
    EXPECT_EQ(back.datatype, kDtInt16);
    EXPECT_EQ(back.scl_inter, -1024);
    EXPECT_EQ(back.srow, image.srow) << "values exact in float";
    EXPECT_EQ(back.descrip, "procnode test");
    EXPECT_EQ(back.voxels, image.voxels);
  }
  // Several gzip members (the writer compresses 1 MiB chunks in parallel): one image.
  NiftiImage big = Sample();
  big.dims = {256, 256, 20, 1, 1};
  big.voxels.assign(256 * 256 * 20 * 2, '\0');
  for (std::size_t i = 0; i < big.voxels.size(); ++i) big.voxels[i] = static_cast<char>(i * 7 % 251);
  EXPECT_EQ(ParseNiftiBytes(NiftiFileBytes(big, true), "big").voxels, big.voxels);
}

TEST(Nifti1Reader, TheVolumeIsInModalityUnitsWithLpsDirections) {
  NiftiImage image = Sample();
  std::vector<int16_t> stored(24);
  for (int i = 0; i < 24; ++i) stored[i] = static_cast<int16_t>(i * 100);
  image.voxels.assign(reinterpret_cast<const char*>(stored.data()), stored.size() * 2);
  const Volume v = VolumeFromNifti(ParseNiftiBytes(NiftiFileBytes(image, false), "sample"));
  EXPECT_EQ(v.dims, (std::array<std::size_t, 3>{2, 3, 4}));
  EXPECT_DOUBLE_EQ(v.spacing[1], 0.75);
  EXPECT_EQ(v.row_direction, (std::array<double, 3>{1, 0, 0})) << "RAS -x is LPS +x";
  EXPECT_EQ(v.column_direction, (std::array<double, 3>{0, -1, 0}));
  EXPECT_EQ(v.origin, (std::array<double, 3>{-10, 20, 30}));
  EXPECT_EQ(v.voxels[5], 500.0f - 1024.0f);
}

TEST(Nifti1Reader, MalformedFilesAreRefusedNamingTheFileAndTheReason) {
  const std::string good = NiftiFileBytes(Sample(), false);
  auto error = [](const std::string& bytes) {
    try {
      ParseNiftiBytes(bytes, "scan.nii");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(error("").find("scan.nii: too short"), std::string::npos);
  EXPECT_NE(error(std::string(400, 'x')).find("not NIfTI-1"), std::string::npos);
  for (std::size_t cut : {std::size_t{348}, std::size_t{360}, good.size() - 1}) {
    EXPECT_NE(error(good.substr(0, cut)).find("scan.nii:"), std::string::npos) << cut;
  }
  EXPECT_NE(error(good.substr(0, good.size() - 1)).find("truncated"), std::string::npos);
  std::string swapped = good;
  const int32_t big_endian = 0x5c010000;
  std::memcpy(swapped.data(), &big_endian, 4);
  EXPECT_NE(error(swapped).find("big-endian"), std::string::npos);
  std::string no_sform = good;
  no_sform[254] = no_sform[255] = 0;
  EXPECT_NE(error(no_sform).find("no sform"), std::string::npos);
  std::string rgb = good;
  const int16_t dt = 128;  // RGB24
  std::memcpy(rgb.data() + 70, &dt, 2);
  EXPECT_NE(error(rgb).find("datatype 128"), std::string::npos);
  std::string negative = good;
  const int16_t minus = -4;
  std::memcpy(negative.data() + 44, &minus, 2);
  EXPECT_NE(error(negative).find("dim[2] is -4"), std::string::npos);
  std::string gz = Gzip(good);
  EXPECT_NE(error(gz.substr(0, gz.size() / 2)).find("gzip"), std::string::npos);
  try {
    ReadNiftiFile("/nonexistent/scan.nii.gz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
}

TEST(Nifti1Reader, ReadsFloat64ImagesAsNumpyWritesThem) {
  NiftiImage image;
  image.dims = {2, 1, 1, 1, 1};
  image.datatype = kDtFloat64;
  image.srow = {{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}};
  const double values[2] = {0.125, -2.5e10};
  image.voxels.assign(reinterpret_cast<const char*>(values), sizeof values);
  const Volume v = VolumeFromNifti(ParseNiftiBytes(NiftiFileBytes(image, true), "f64.nii.gz"));
  ASSERT_EQ(v.voxels.size(), 2u);
  EXPECT_EQ(v.voxels[0], 0.125f);
  EXPECT_EQ(v.voxels[1], -2.5e10f);
  EXPECT_THROW(ParseNiftiBytes(NiftiFileBytes(image, true), "f64.nii.gz", 100), Error);
}

}  // namespace
}  // namespace procnode
