// OwnedSchema / OwnedArray: the spec's move semantics, with release calls
// counted through a wrapper around real producer output.
#include <memory>

#include <gtest/gtest.h>

#include "airlock/cpp/arrow.hpp"

namespace airlock::arrow {
namespace {

// Wraps a live struct so that its release is counted, then forwarded.
template <typename T>
struct Counted {
  T inner;
  int* releases;
};

template <typename T>
void CountingRelease(T* s) {
  std::unique_ptr<Counted<T>> counted(static_cast<Counted<T>*>(s->private_data));
  ++*counted->releases;
  counted->inner.release(&counted->inner);
  s->release = nullptr;
}

template <typename T>
T Wrap(T live, int* releases) {
  T wrapped = live;  // children, buffers etc. stay visible to readers
  auto counted = std::make_unique<Counted<T>>(Counted<T>{live, releases});
  wrapped.release = &CountingRelease<T>;
  wrapped.private_data = counted.release();
  return wrapped;
}

ArrowArray CountedArray(int* releases) {
  RecordBatchBuilder builder({{"a", Type::kInt32}, {"s", Type::kUtf8}});
  builder.AppendInt32(0, 7);
  builder.AppendString(1, "seven");
  ArrowArray raw{};
  builder.Finish().MoveTo(&raw);
  return Wrap(raw, releases);
}

ArrowSchema CountedSchema(int* releases) {
  ArrowSchema raw{};
  MakeStructSchema({{"a", Type::kInt32}}).MoveTo(&raw);
  return Wrap(raw, releases);
}

TEST(OwnedArray, DestructorReleasesOnce) {
  int releases = 0;
  {
    ArrowArray raw = CountedArray(&releases);
    OwnedArray owned = OwnedArray::TakeFrom(&raw);
    EXPECT_EQ(raw.release, nullptr);
    EXPECT_TRUE(owned.valid());
    EXPECT_EQ(releases, 0);
  }
  EXPECT_EQ(releases, 1);
}

TEST(OwnedArray, MoveConstructAndAssignTransferOwnership) {
  int a_releases = 0;
  int b_releases = 0;
  {
    ArrowArray raw_a = CountedArray(&a_releases);
    ArrowArray raw_b = CountedArray(&b_releases);
    OwnedArray a = OwnedArray::TakeFrom(&raw_a);
    OwnedArray moved(std::move(a));
    EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_TRUE(moved.valid());
    EXPECT_EQ(moved->length, 1);

    OwnedArray b = OwnedArray::TakeFrom(&raw_b);
    b = std::move(moved);  // b's previous array is released now
    EXPECT_EQ(b_releases, 1);
    EXPECT_EQ(a_releases, 0);
    OwnedArray& alias = b;
    b = std::move(alias);  // self-move is harmless
    EXPECT_TRUE(b.valid());
  }
  EXPECT_EQ(a_releases, 1);
  EXPECT_EQ(b_releases, 1);
}

TEST(OwnedArray, MoveToHandsOwnershipToRawStorage) {
  int releases = 0;
  ArrowArray raw = CountedArray(&releases);
  OwnedArray owned = OwnedArray::TakeFrom(&raw);
  ArrowArray out{};
  EXPECT_EQ(owned.release_to(&out), &out);
  EXPECT_FALSE(owned.valid());
  owned.reset();  // nothing to release any more
  EXPECT_EQ(releases, 0);
  ASSERT_NE(out.release, nullptr);
  out.release(&out);
  EXPECT_EQ(out.release, nullptr);
  EXPECT_EQ(releases, 1);
}

TEST(OwnedArray, ResetReleasesImmediately) {
  int releases = 0;
  ArrowArray raw = CountedArray(&releases);
  OwnedArray owned = OwnedArray::TakeFrom(&raw);
  owned.reset();
  EXPECT_EQ(releases, 1);
  owned.reset();
  EXPECT_EQ(releases, 1);
}

TEST(OwnedArray, TakeFromReleasedStructHoldsNothing) {
  ArrowArray released{};
  OwnedArray owned = OwnedArray::TakeFrom(&released);
  EXPECT_FALSE(owned.valid());
  OwnedArray from_null = OwnedArray::TakeFrom(nullptr);
  EXPECT_FALSE(from_null.valid());
}

TEST(OwnedSchema, MovesReleaseExactlyOnce) {
  int releases = 0;
  {
    ArrowSchema raw = CountedSchema(&releases);
    OwnedSchema a = OwnedSchema::TakeFrom(&raw);
    OwnedSchema b(std::move(a));
    OwnedSchema c;
    c = std::move(b);
    ArrowSchema out{};
    c.MoveTo(&out);
    OwnedSchema d = OwnedSchema::TakeFrom(&out);
    EXPECT_STREQ(d->format, "+s");
    EXPECT_EQ(d->n_children, 1);
    EXPECT_EQ(releases, 0);
  }
  EXPECT_EQ(releases, 1);
}

TEST(OwnedSchema, ReleaseReleasesChildrenAndNullsItself) {
  ArrowSchema raw{};
  MakeStructSchema({{"a", Type::kInt32}, {"b", Type::kUtf8}}).MoveTo(&raw);
  ASSERT_NE(raw.release, nullptr);
  raw.release(&raw);
  EXPECT_EQ(raw.release, nullptr);  // children freed by the parent (ASan checks leaks)
}

}  // namespace
}  // namespace airlock::arrow
