#include "nifti/nifti1.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>

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

}  // namespace
}  // namespace procnode
