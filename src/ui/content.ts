/**
 * What an operator edits in one place: the service's contact points and the text of its information pages (help,
 * privacy notice, terms, accessibility statement). Placeholder content: replace it before going live; every page and
 * the footer read it from here. Each text is a list of paragraphs, Vietnamese and English.
 */
import type { Lang } from './i18n.ts';

/** Contact points shown in every page's footer. */
export const CONTACT = {
  hotline: '1900 0368',
  email: 'hotro@dinhdanh.example.vn',
  operator: { vi: 'Cơ quan vận hành: (điền tên cơ quan)', en: 'Operated by: (agency name)' },
};

type Text = Record<Lang, { title: string; paragraphs: string[] }>;

/** The information pages, by path. */
export const INFO_PAGES: Record<'/help' | '/privacy' | '/terms' | '/accessibility', Text> = {
  '/help': {
    vi: {
      title: 'Trợ giúp',
      paragraphs: [
        'Số định danh cá nhân gồm 12 chữ số, in ở mặt trước thẻ căn cước (mục "Số định danh cá nhân") và trên thẻ căn cước công dân gắn chip. Trẻ em chưa có thẻ: xem giấy khai sinh hoặc hỏi cơ quan công an nơi cư trú.',
        'Đăng ký tài khoản mức 1: nhập số định danh, họ tên và ngày sinh đúng như trên thẻ, chọn mật khẩu, rồi nhập mã xác thực gửi tới số điện thoại đã đăng ký chính chủ với số định danh của bạn.',
        'Tài khoản mức 2: mang thẻ căn cước tới cơ quan công an để được xác minh trực tiếp, rồi cài ứng dụng xác thực trên trang "Tài khoản".',
        'Quên mật khẩu: chọn "Quên mật khẩu?" trên trang đăng nhập. Không dùng được số điện thoại: đến cơ quan công an để được cấp mã đặt lại.',
      ],
    },
    en: {
      title: 'Help',
      paragraphs: [
        'Your personal identification number has 12 digits. It is printed on the front of your ID card ("Personal identification number") and on the chip-based citizen ID card. Children without a card: see the birth certificate or ask your local police office.',
        'Level 1 account: enter your number, full name and date of birth exactly as on the card, choose a password, then enter the code sent to the phone number registered to your personal ID.',
        'Level 2 account: bring your ID card to a police office to be verified in person, then set up an authenticator app on the "Account" page.',
        'Forgot your password: choose "Forgot your password?" on the sign-in page. Cannot use your phone: a police office gives you a reset code.',
      ],
    },
  },
  '/privacy': {
    vi: {
      title: 'Thông báo xử lý dữ liệu cá nhân',
      paragraphs: [
        'Dịch vụ xác thực danh tính của bạn với Cơ sở dữ liệu quốc gia về dân cư và chỉ chia sẻ với cổng dịch vụ những thông tin bạn đồng ý, theo Luật Bảo vệ dữ liệu cá nhân (Luật số 91/2025/QH15) và Nghị định 356/2025/NĐ-CP.',
        'Bạn có thể xem và thu hồi sự đồng ý, xem lịch sử đăng nhập và kết thúc phiên đăng nhập trên trang "Tài khoản". (Nội dung mẫu: cơ quan vận hành thay bằng thông báo chính thức.)',
      ],
    },
    en: {
      title: 'Personal data notice',
      paragraphs: [
        'This service verifies your identity against the national population database and shares with a portal only what you agree to, under the Personal Data Protection Law (Law 91/2025/QH15) and Decree 356/2025/ND-CP.',
        'On the "Account" page you can see and withdraw your consents, see your sign-in history and end sessions. (Placeholder: the operator replaces this with the official notice.)',
      ],
    },
  },
  '/terms': {
    vi: {
      title: 'Điều khoản sử dụng',
      paragraphs: [
        'Tài khoản định danh điện tử là của riêng bạn: không cho người khác dùng, không chia sẻ mật khẩu hay mã xác thực. (Nội dung mẫu: cơ quan vận hành thay bằng điều khoản chính thức theo Nghị định 69/2024/NĐ-CP.)',
      ],
    },
    en: {
      title: 'Terms of use',
      paragraphs: [
        'Your electronic identification account is yours alone: do not let others use it and never share your password or codes. (Placeholder: the operator replaces this with the official terms under Decree 69/2024/ND-CP.)',
      ],
    },
  },
  '/accessibility': {
    vi: {
      title: 'Tuyên bố hỗ trợ tiếp cận',
      paragraphs: [
        'Các trang của dịch vụ hướng tới chuẩn WCAG 2.2 mức AA: dùng được bằng bàn phím, với trình đọc màn hình và trên điện thoại nhỏ. Mỗi trang được kiểm tra tự động bằng axe-core.',
        `Gặp khó khăn khi sử dụng? Gọi ${CONTACT.hotline} hoặc viết tới ${CONTACT.email}; chúng tôi sẽ hỗ trợ và sửa lỗi.`,
      ],
    },
    en: {
      title: 'Accessibility statement',
      paragraphs: [
        'These pages aim at WCAG 2.2 level AA: usable with a keyboard, with a screen reader and on small phones. Every page is checked automatically with axe-core.',
        `Something does not work for you? Call ${CONTACT.hotline} or write to ${CONTACT.email}; we will help and fix it.`,
      ],
    },
  },
};
