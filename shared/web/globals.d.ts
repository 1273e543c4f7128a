// What the board's two scripts share through the page (chart.js defines it, board.js uses it).
interface Window {
  CrsChart: {
    render: (...args: any[]) => any;
    o2Text: (...args: any[]) => string;
    setDeviceNames: (names: Record<string, string> | undefined) => void;
    pressorText: (...args: any[]) => string;
    COLORS: Record<string, string>;
  };
}
